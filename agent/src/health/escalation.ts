// The escalation ladder (DESIGN.md, "Health and escalation"). The HealthMonitor hands it what
// its checks found; it answers with the step to take now and records the step with its reason.
//
//   1  restart the failing part (a supervisor that gave up)      — `partRestarts` tries per part
//   2  restart the agent (exit; init starts it again)            — `agentRestarts` tries
//   3  reboot the device (the watchdog is no longer fed)         — damped: see below
//   4  roll back to the previous firmware slot                   — when the OTA layer says it can
//   5  ask for a technician ("needs a human" in the heartbeat)   — once; the agent keeps working
//
// The ledger lives in the agent's database on /data, so a restart or a reboot does not forget
// how far up the ladder the device already is. It is cleared after the agent has been healthy
// for `healthyResetMs` without a break. Reboots are damped: the n-th reboot (n ≥ 2) waits until
// the device has been up min(first × 2^(n-2), max), so a device whose trouble outlives a reboot
// keeps capturing between ever rarer reboots instead of rebooting in a loop.
import type { EscalationStep, Verdict } from '@vigil/protocol';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Kv } from '../store/kv.js';

const LEDGER_KEY = 'escalation';
/** Steps kept for the heartbeat. */
export const ESCALATION_HISTORY = 20;

export interface EscalationPolicy {
  partRestarts: number;
  agentRestarts: number;
  rebootsBeforeHuman: number;
  healthyResetMs: number;
  rebootDampFirstMs: number;
  rebootDampMaxMs: number;
}

/** What a health check found. Only `restart_part` and `restart_agent` climb the ladder. */
export interface Finding {
  check: string;
  part: string | null;
  reason: string;
  remedy: 'restart_part' | 'restart_agent' | 'report';
}

export type Action =
  | { step: 1; part: string; reason: string }
  | { step: 2 | 3 | 4; part: null; reason: string };

interface Ledger {
  partRestarts: Record<string, number>;
  agentRestarts: number;
  reboots: number;
  rolledBack: string | null;
  needsHuman: string | null;
  steps: EscalationStep[];
}

const emptyLedger = (): Ledger => ({ partRestarts: {}, agentRestarts: 0, reboots: 0, rolledBack: null, needsHuman: null, steps: [] });

export interface EscalationOptions {
  kv: Kv;
  clock: Clock;
  log: Logger;
  policy: EscalationPolicy;
  /** A hardware watchdog (or the firmware's keeper) can reset the board. */
  canReboot: () => boolean;
  /** The OTA layer can boot the previous slot (the trouble began with an update). */
  canRollBack: () => boolean;
  /** How long the device has been up (ms): the reboot damping is measured on it. */
  uptimeMs: () => number;
}

export class Escalation {
  #ledger: Ledger;
  /** Monotonic time since when every check passed; null while something is wrong. */
  #healthySince: number | null = null;
  #dampedLogged = false;

  constructor(private readonly o: EscalationOptions) {
    this.#ledger = this.load();
  }

  /** The step to take for these findings, already recorded; null when nothing is to be done now. */
  decide(findings: Finding[]): Action[] {
    const { clock, policy } = this.o;
    const now = clock.monotonic();
    const actionable = findings.filter((f) => f.remedy !== 'report');
    if (actionable.length === 0) {
      this.#healthySince ??= now;
      if (now - this.#healthySince >= policy.healthyResetMs && !this.isClear()) this.reset();
      return [];
    }
    this.#healthySince = null;

    const actions: Action[] = [];
    let agentReason: string | null = null;
    for (const f of actionable) {
      if (f.remedy === 'restart_part' && f.part !== null) {
        const tries = this.#ledger.partRestarts[f.part] ?? 0;
        if (tries < policy.partRestarts) {
          this.#ledger.partRestarts[f.part] = tries + 1;
          actions.push(this.record({ step: 1, part: f.part, reason: `${f.reason} (try ${tries + 1} of ${policy.partRestarts})` }));
          continue;
        }
        agentReason ??= `${f.part} still failing after ${tries} restarts: ${f.reason}`;
      } else {
        agentReason ??= f.reason;
      }
    }
    if (agentReason !== null) {
      const action = this.beyondParts(agentReason);
      if (action) actions.push(action);
    }
    this.save();
    return actions;
  }

  /** Trouble the parts cannot fix: restart the agent, then reboot, roll back, ask for a human. */
  private beyondParts(reason: string): Action | null {
    const { policy } = this.o;
    const l = this.#ledger;
    if (l.agentRestarts < policy.agentRestarts) {
      l.agentRestarts++;
      return this.record({ step: 2, part: null, reason: `${reason} (restart ${l.agentRestarts} of ${policy.agentRestarts})` });
    }
    if (l.reboots >= policy.rebootsBeforeHuman) {
      if (l.rolledBack === null && this.o.canRollBack()) {
        l.rolledBack = reason;
        return this.record({ step: 4, part: null, reason: `${reason}; ${l.reboots} reboots did not help` });
      }
      if (l.needsHuman === null) {
        l.needsHuman = `${reason}; ${l.agentRestarts} agent restarts and ${l.reboots} reboots did not help`;
        this.record({ step: 5, part: null, reason: l.needsHuman });
      }
    }
    if (!this.o.canReboot()) {
      if (l.needsHuman === null) {
        l.needsHuman = `${reason}; ${l.agentRestarts} agent restarts did not help and this device has no watchdog to reset it`;
        this.record({ step: 5, part: null, reason: l.needsHuman });
      }
      return null;
    }
    const wait = this.rebootDelayMs(l.reboots) - this.o.uptimeMs();
    if (wait > 0) {
      if (!this.#dampedLogged) this.o.log.warn({ reboots: l.reboots, waitMs: Math.round(wait) }, 'reboot damped: the device rebooted recently; waiting');
      this.#dampedLogged = true;
      return null;
    }
    this.#dampedLogged = false;
    l.reboots++;
    // A reboot is a fresh start for the lower steps: restarts are tried again after it.
    l.agentRestarts = 0;
    l.partRestarts = {};
    return this.record({ step: 3, part: null, reason: `${reason} (reboot ${l.reboots})` });
  }

  /** Uptime the device needs before reboot number `done + 1`. */
  rebootDelayMs(done: number): number {
    const { rebootDampFirstMs: first, rebootDampMaxMs: max } = this.o.policy;
    if (done === 0) return 0;
    return Math.min(first * 2 ** (done - 1), max);
  }

  /** Records a step taken outside the checks (the supervision root gave up: step 2). */
  recordAgentRestart(reason: string): void {
    this.#ledger.agentRestarts++;
    this.record({ step: 2, part: null, reason });
    this.save();
  }

  verdict(): { verdict: Verdict; reason: string | null } {
    const l = this.#ledger;
    if (l.needsHuman !== null) return { verdict: 'needs_human', reason: l.needsHuman };
    if (l.rolledBack !== null) return { verdict: 'rolled_back', reason: l.rolledBack };
    const last = l.steps.at(-1);
    if (last) return { verdict: 'self_healed', reason: `step ${last.step}${last.part ? ` (${last.part})` : ''}: ${last.reason}` };
    return { verdict: 'nominal', reason: null };
  }

  steps(): EscalationStep[] {
    return [...this.#ledger.steps];
  }

  counts(): { agentRestarts: number; reboots: number; partRestarts: Record<string, number> } {
    const l = this.#ledger;
    return { agentRestarts: l.agentRestarts, reboots: l.reboots, partRestarts: { ...l.partRestarts } };
  }

  private record<A extends Action | { step: 5; part: null; reason: string }>(a: A): A {
    this.#ledger.steps.push({ at: this.o.clock.now(), step: a.step, part: a.part, reason: a.reason });
    if (this.#ledger.steps.length > ESCALATION_HISTORY) this.#ledger.steps.splice(0, this.#ledger.steps.length - ESCALATION_HISTORY);
    this.o.log.warn({ step: a.step, part: a.part, reason: a.reason }, `escalation step ${a.step}`);
    return a;
  }

  private isClear(): boolean {
    const l = this.#ledger;
    return l.steps.length === 0 && l.agentRestarts === 0 && l.reboots === 0 && Object.keys(l.partRestarts).length === 0;
  }

  private reset(): void {
    this.o.log.info({ ...this.counts(), healthyMs: this.o.policy.healthyResetMs }, 'healthy for the whole period: escalation counters reset');
    this.#ledger = emptyLedger();
    this.save();
  }

  private load(): Ledger {
    const raw = this.o.kv.get(LEDGER_KEY);
    if (!raw) return emptyLedger();
    try {
      return { ...emptyLedger(), ...(JSON.parse(raw.toString('utf8')) as Partial<Ledger>) };
    } catch (err) {
      this.o.log.error({ err }, 'escalation ledger unreadable; starting a new one');
      return emptyLedger();
    }
  }

  private save(): void {
    this.o.kv.set(LEDGER_KEY, Buffer.from(JSON.stringify(this.#ledger)), this.o.clock.now());
  }
}
