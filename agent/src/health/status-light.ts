// The board's activity light as the agent's status, for a technician with no screen: one look
// at the Pi says "working", "waiting to be claimed" or "something needs attention". Driven
// through the kernel's LED class (/sys/class/leds/ACT on a Pi 4), whose triggers do the
// blinking: the agent only writes when the state changes, and a stopped or hung agent leaves
// the light in a pattern that is not "working" (solid, or the SD card's activity once stopped).
//
//   solid on          starting (no health check yet)
//   slow blink (1 s)  waiting for a claim: no device token, or the token was refused
//   fast blink        attention: a camera failing, a health problem, the cloud not reached
//   heartbeat         working: token valid, every camera capturing, uploads flowing
//
// docs/technician.md explains the same table to technicians.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

export type LightState = 'starting' | 'setup' | 'attention' | 'ok';

/** The LED class settings each state writes, in order ("trigger" first: it creates the timer's files). */
export const LIGHT_PATTERNS: Record<LightState, [file: string, value: string][]> = {
  starting: [
    ['trigger', 'none'],
    ['brightness', '1'],
  ],
  setup: [
    ['trigger', 'timer'],
    ['delay_on', '1000'],
    ['delay_off', '1000'],
  ],
  attention: [
    ['trigger', 'timer'],
    ['delay_on', '100'],
    ['delay_off', '100'],
  ],
  ok: [['trigger', 'heartbeat']],
};

/** The LEDs tried when none is configured: a Pi 4's activity LED, then its older name. */
export const DEFAULT_LEDS = ['/sys/class/leds/ACT', '/sys/class/leds/led0'];

export interface LightInputs {
  tokenValid: boolean;
  /** The latest health check: null before the first. */
  report: { problems: unknown[]; cameras: { state: string }[] } | null;
}

export function lightState(i: LightInputs): LightState {
  if (!i.tokenValid) return 'setup';
  if (i.report === null) return 'starting';
  if (i.report.problems.length > 0 || i.report.cameras.some((c) => c.state !== 'ok')) return 'attention';
  return 'ok';
}

/** The LED's directory: the configured one, else the first default that exists; undefined: none. */
export function findLed(configured: string | undefined, candidates = DEFAULT_LEDS): string | undefined {
  if (configured !== undefined) return configured === '' ? undefined : configured;
  return candidates.find((d) => existsSync(join(d, 'trigger')));
}

/** How often the light is brought up to date (it only writes on a change). */
export const STATUS_LIGHT_INTERVAL_MS = 2_000;

/** Keeps the LED showing `state()` until stopped; stopping gives the LED back its trigger from before. */
export function runStatusLight(dir: string, log: Logger, state: () => LightState): { stop(): void } {
  const light = new StatusLight(dir, log);
  const show = () => light.show(state());
  show();
  const timer = setInterval(show, STATUS_LIGHT_INTERVAL_MS);
  return {
    stop: () => {
      clearInterval(timer);
      light.close();
    },
  };
}

/**
 * Shows a state on the LED. Writes only on a change; a write that fails (no such LED, no
 * permission) is logged once and the light is left alone from then on: it is a convenience,
 * never a reason for the agent to fail. close() gives the LED back its trigger from before.
 */
export class StatusLight {
  #state: LightState | undefined;
  #broken = false;
  readonly #before: string | undefined;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    // The trigger file lists every trigger with the selected one in brackets: "none [mmc0] timer"
    this.#before = this.read('trigger')?.match(/\[([^\]]+)\]/)?.[1];
  }

  get state(): LightState | undefined {
    return this.#state;
  }

  show(state: LightState): void {
    if (state === this.#state || this.#broken) return;
    for (const [file, value] of LIGHT_PATTERNS[state]) if (!this.write(file, value)) return;
    this.#state = state;
    this.log.info({ led: this.dir, state }, 'status light');
  }

  close(): void {
    if (this.#before !== undefined && !this.#broken) this.write('trigger', this.#before);
    this.#state = undefined;
  }

  private read(file: string): string | undefined {
    try {
      return readFileSync(join(this.dir, file), 'utf8');
    } catch {
      return undefined;
    }
  }

  private write(file: string, value: string): boolean {
    try {
      writeFileSync(join(this.dir, file), value);
      return true;
    } catch (err) {
      this.#broken = true;
      this.log.warn({ led: this.dir, file, code: errorCode(err) }, 'cannot drive the status light; leaving it alone');
      return false;
    }
  }
}
