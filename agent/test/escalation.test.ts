import t, { type Test } from 'tap';
import { join } from 'node:path';
import { openDb } from '../src/store/db.js';
import { Kv } from '../src/store/kv.js';
import { FakeClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { Escalation, type EscalationPolicy, type Finding } from '../src/health/escalation.js';

const POLICY: EscalationPolicy = {
  partRestarts: 3,
  agentRestarts: 3,
  rebootsBeforeHuman: 2,
  healthyResetMs: 30 * 60_000,
  rebootDampFirstMs: 10 * 60_000,
  rebootDampMaxMs: 4 * 3_600_000,
};

const PART: Finding = { check: 'supervision', part: 'cameras/camera:c1/uploads', reason: 'gave up', remedy: 'restart_part' };
const SPIN: Finding = { check: 'cpu', part: null, reason: '95 % CPU, nothing moved', remedy: 'restart_agent' };
const CAMERA_DOWN: Finding = { check: 'camera', part: 'camera:c1', reason: 'no good capture', remedy: 'report' };

interface Device {
  reboot: boolean;
  rollBack: boolean;
  uptimeMs: number;
}

function setup(t: Test, device: Partial<Device> = {}) {
  const dir = t.testdir({});
  const clock = new FakeClock();
  const dev: Device = { reboot: true, rollBack: false, uptimeMs: 0, ...device };
  const dbs: { close(): void }[] = [];
  t.teardown(() => dbs.forEach((d) => d.close()));
  /** A new Escalation over the database on disk, as a restarted agent builds it. */
  const open = (): Escalation => {
    const db = openDb(join(dir, 'agent.db'));
    dbs.push(db);
    return new Escalation({
      kv: new Kv(db),
      clock,
      log: silentLogger(),
      policy: POLICY,
      canReboot: () => dev.reboot,
      canRollBack: () => dev.rollBack,
      uptimeMs: () => dev.uptimeMs,
    });
  };
  return { clock, dev, open };
}

const steps = (e: Escalation, f: Finding[]) => e.decide(f).map((a) => a.step);

t.test('a failed part is restarted a few times, then the agent is', async (t) => {
  const { open } = setup(t);
  const e = open();
  t.same(e.decide([PART]), [{ step: 1, part: PART.part, reason: 'gave up (try 1 of 3)' }], 'step 1 names the part and the try');
  t.same(steps(e, [PART]), [1]);
  t.same(steps(e, [PART]), [1]);
  const fourth = e.decide([PART]);
  t.same(fourth.map((a) => a.step), [2], 'the fourth failure restarts the agent');
  t.match(fourth[0]!.reason, /cameras\/camera:c1\/uploads still failing after 3 restarts/);
  t.equal(e.verdict().verdict, 'self_healed');
  t.match(e.verdict().reason, /^step 2: /);
});

t.test('reports alone never climb the ladder', async (t) => {
  const { open } = setup(t);
  const e = open();
  for (let i = 0; i < 10; i++) t.same(e.decide([CAMERA_DOWN]), []);
  t.same(e.steps(), []);
  t.equal(e.verdict().verdict, 'nominal');
});

t.test('agent trouble: restarts, then a reboot, then damped reboots, then a human', async (t) => {
  const { open, dev } = setup(t);
  const e = open();
  t.same([steps(e, [SPIN]), steps(e, [SPIN]), steps(e, [SPIN])], [[2], [2], [2]], 'three agent restarts');
  t.same(steps(e, [SPIN]), [3], 'then the first reboot, at once');
  t.same(e.counts(), { agentRestarts: 0, reboots: 1, partRestarts: {} }, 'a reboot gives the lower steps a fresh start');
  t.same([steps(e, [SPIN]), steps(e, [SPIN]), steps(e, [SPIN])], [[2], [2], [2]]);
  dev.uptimeMs = 9 * 60_000;
  t.same(steps(e, [SPIN]), [], 'the second reboot waits for 10 min of uptime');
  dev.uptimeMs = 10 * 60_000;
  t.same(steps(e, [SPIN]), [3], 'and happens once the device has been up that long');
  t.same([steps(e, [SPIN]), steps(e, [SPIN]), steps(e, [SPIN])], [[2], [2], [2]]);
  dev.uptimeMs = 19 * 60_000;
  t.same(steps(e, [SPIN]), [], 'the third reboot waits for 20 min');
  t.equal(e.verdict().verdict, 'needs_human', 'two reboots did not help: a technician is asked for');
  t.match(e.verdict().reason, /2 reboots did not help/);
  t.equal(e.steps().filter((s) => s.step === 5).length, 1, 'step 5 is recorded once');
  dev.uptimeMs = 20 * 60_000;
  t.same(steps(e, [SPIN]), [3], 'reboots go on, damped, after asking for a human');
  t.equal(e.rebootDelayMs(20), POLICY.rebootDampMaxMs, 'the damping is capped');
  t.equal(e.steps().filter((s) => s.step === 5).length, 1, 'and step 5 is not repeated');
});

t.test('after an update, the slot is rolled back before a human is asked for', async (t) => {
  const { open, dev } = setup(t, { rollBack: true });
  const e = open();
  for (let reboot = 0; reboot < 2; reboot++) {
    for (let i = 0; i < 3; i++) steps(e, [SPIN]);
    dev.uptimeMs = 24 * 3_600_000;
    t.same(steps(e, [SPIN]), [3]);
  }
  for (let i = 0; i < 3; i++) steps(e, [SPIN]);
  t.same(steps(e, [SPIN]), [4], 'step 4 after two reboots');
  t.equal(e.verdict().verdict, 'rolled_back');
});

t.test('without a watchdog the agent cannot reboot: after its restarts it asks for a human', async (t) => {
  const { open } = setup(t, { reboot: false });
  const e = open();
  for (let i = 0; i < 3; i++) t.same(steps(e, [SPIN]), [2]);
  t.same(steps(e, [SPIN]), [], 'no reboot step');
  t.same(steps(e, [SPIN]), []);
  t.equal(e.verdict().verdict, 'needs_human');
  t.match(e.verdict().reason, /no watchdog/);
  t.equal(e.steps().filter((s) => s.step === 5).length, 1);
});

t.test('the counters survive a restart of the agent and reset after a healthy period', async (t) => {
  const { open, clock } = setup(t);
  const first = open();
  steps(first, [PART]);
  steps(first, [PART]);
  steps(first, [SPIN]);
  const again = open();
  t.same(again.counts(), { agentRestarts: 1, reboots: 0, partRestarts: { [PART.part!]: 2 } }, 'read back from /data');
  t.same(again.steps().map((s) => s.step), [1, 1, 2]);
  t.same(steps(again, [PART]), [1], 'the third try of the part');
  t.same(steps(again, [PART]), [2], 'and then the agent, as if there had been no restart');

  t.same(again.decide([CAMERA_DOWN]), [], 'healthy (a report is not a fault)');
  await clock.advance(POLICY.healthyResetMs - 1);
  t.same(again.decide([]), []);
  t.not(again.verdict().verdict, 'nominal', 'not yet reset just before the period ends');
  t.same(steps(again, [SPIN]), [2], 'a problem in between...');
  t.same(again.decide([]), []);
  await clock.advance(POLICY.healthyResetMs - 1);
  t.same(again.decide([]), []);
  t.equal(again.counts().agentRestarts, 3, '...starts the healthy period over');
  await clock.advance(1);
  t.same(again.decide([]), []);
  t.same(again.counts(), { agentRestarts: 0, reboots: 0, partRestarts: {} }, 'reset after a whole healthy period');
  t.equal(again.verdict().verdict, 'nominal');
  t.same(open().counts(), { agentRestarts: 0, reboots: 0, partRestarts: {} }, 'and the reset is on disk too');
});

t.test('the step history is bounded', async (t) => {
  const { open } = setup(t);
  const e = open();
  for (let i = 0; i < 40; i++) e.decide([{ ...PART, part: `p${i}` }]);
  t.equal(e.steps().length, 20);
  t.equal(e.steps().at(-1)!.part, 'p39', 'newest kept');
});
