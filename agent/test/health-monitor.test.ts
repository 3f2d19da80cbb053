import t, { type Test } from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { openDb } from '../src/store/db.js';
import { Kv } from '../src/store/kv.js';
import { FakeClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { Escalation } from '../src/health/escalation.js';
import { HealthMonitor, MISSED_CHECKS, REBOOT_GRACE_MS, type ProcessUsage } from '../src/health/health-monitor.js';
import { kernelParam, parseAssignments, parseClockStatus, readClockState, readFirmwareInfo } from '../src/health/system-facts.js';

const INTERVAL = 60_000;

function setup(t: Test, o: { canReboot?: boolean } = {}) {
  const db = openDb(join(t.testdir({}), 'agent.db'));
  t.teardown(() => db.close());
  const clock = new FakeClock();
  const failed: { path: string; reason: string }[] = [];
  const usage: ProcessUsage = { cpuMs: 0, rssBytes: 100e6, heapUsedBytes: 40e6 };
  const calls: string[] = [];
  const escalation = new Escalation({
    kv: new Kv(db),
    clock,
    log: silentLogger(),
    policy: { partRestarts: 2, agentRestarts: 1, rebootsBeforeHuman: 2, healthyResetMs: 600_000, rebootDampFirstMs: 600_000, rebootDampMaxMs: 3_600_000 },
    canReboot: () => o.canReboot ?? true,
    canRollBack: () => false,
    uptimeMs: () => 0,
  });
  const monitor = new HealthMonitor({
    clock,
    log: silentLogger(),
    intervalMs: INTERVAL,
    limits: { maxLoopLagMs: 5_000, maxRssBytes: 500e6, maxIdleCpu: 0.8, minFreeDiskBytes: 0, cameraFailingIntervals: 3, maxUploadStepMs: 120_000, maxQueueAgeMs: 3_600_000, livenessGraceMs: 60_000 },
    parts: { cameras: () => [], uploaders: () => [], failedParts: () => failed },
    queue: () => [{ camera: 'c1', variant: 'compressed', depth: 3, oldestAgeMs: 90_000 }],
    loop: { sample: () => ({ lagMaxMs: 12 }) },
    disk: async () => ({ totalBytes: 1e9, freeBytes: 5e8 }),
    clockState: async () => 'synced',
    escalation,
    actions: {
      restartPart: (p) => {
        calls.push(`restart ${p}`);
        failed.splice(0);
        return true;
      },
      restartAgent: (r) => void calls.push(`agent: ${r}`),
      reboot: (r) => void calls.push(`reboot: ${r}`),
      rollBack: async (r) => void calls.push(`rollback: ${r}`),
    },
    usage: () => usage,
  });
  return { clock, monitor, failed, usage, calls, escalation };
}

t.test('a subtree that gave up is restarted by the next check, and the report says what was found', async (t) => {
  const { monitor, failed, calls } = setup(t);
  t.same(monitor.latest(), null, 'no report before the first check');
  failed.push({ path: 'cameras/camera:c1/uploads', reason: 'uploads:c1 gave up: INJECTED: boom' });
  const report = await monitor.check();
  t.same(calls, ['restart cameras/camera:c1/uploads']);
  t.same(report.problems, [{ check: 'supervision', part: 'cameras/camera:c1/uploads', reason: 'uploads:c1 gave up: INJECTED: boom' }]);
  t.same(report.queue, [{ camera: 'c1', variant: 'compressed', depth: 3, oldestAgeMs: 90_000 }]);
  t.same(report.disk, { totalBytes: 1e9, freeBytes: 5e8 });
  t.equal(report.clock, 'synced');
  t.equal(monitor.latest(), report);
  t.same((await monitor.check()).problems, [], 'the restart cleared it');
});

t.test('the watchdog is fed only while checks keep coming and no reboot was decided', async (t) => {
  const { monitor, clock, usage, calls } = setup(t);
  const stop = new AbortController();
  const loop = monitor.start(stop.signal);
  t.ok(monitor.okToFeed(), 'fed from the start');
  await clock.advance(INTERVAL);
  t.ok(monitor.latest(), 'the loop checked');
  t.ok(monitor.okToFeed());
  stop.abort();
  await loop;
  await clock.advance(MISSED_CHECKS * INTERVAL);
  t.ok(monitor.okToFeed(), 'a late check is tolerated up to the limit');
  await clock.advance(1);
  t.notOk(monitor.okToFeed(), 'no check for too long: the monitor itself is stuck, stop feeding');
  await monitor.check();
  t.ok(monitor.okToFeed(), 'checks resumed');

  // A zombie: CPU burnt while nothing moves -> restart the agent, then reboot.
  usage.cpuMs += 0.95 * INTERVAL;
  await clock.advance(INTERVAL);
  await monitor.check();
  t.match(calls, [/^agent: .*95 % CPU/]);
  usage.cpuMs += 0.95 * INTERVAL;
  await clock.advance(INTERVAL);
  await monitor.check();
  t.match(calls[1], /^reboot: /, 'the agent restart did not help: reboot');
  t.notOk(monitor.okToFeed(), 'not fed once the reboot is decided');
  await clock.advance(REBOOT_GRACE_MS + 1);
  await monitor.check();
  t.match(calls[2], /^agent: the board did not reset/, 'a board that does not reset gets the agent restarted instead');
});

t.test('system facts: release file, kernel parameters, tryboot flag, NTP state', async (t) => {
  const dir = t.testdir({
    release: 'VIGIL_FIRMWARE_VERSION=v1.2.3-4-gabc\nVIGIL_FIRMWARE_BOARD=rpi4\nVIGIL_FIRMWARE_BUILD_EPOCH=1790000000\n',
    cmdline: 'root=/dev/mmcblk0p6 rootfstype=squashfs ro vigil.slot=b console=ttyAMA0\n',
  });
  writeFileSync(join(dir, 'tryboot'), Buffer.from([0, 0, 0, 1]));
  const files = { releaseFile: join(dir, 'release'), cmdlineFile: join(dir, 'cmdline'), trybootFile: join(dir, 'tryboot'), clockStatusCommand: [] };
  t.same(await readFirmwareInfo(files), { version: 'v1.2.3-4-gabc', slot: 'B', trial: true, builtAt: 1_790_000_000_000 });
  t.same(await readFirmwareInfo({ ...files, releaseFile: join(dir, 'none'), cmdlineFile: join(dir, 'none'), trybootFile: join(dir, 'none') }), {
    version: null,
    slot: null,
    trial: false,
    builtAt: null,
  }, 'no firmware files: unknown, not an error');
  t.same(parseAssignments('A="x y"\n# c\nB=2'), { A: 'x y', B: '2' });
  t.equal(kernelParam('a=1 vigil.tryboot=1', 'vigil.tryboot'), '1');
  t.equal(parseClockStatus('Reference ID    : 0A000001\nLeap status     : Normal\n'), 'synced');
  t.equal(parseClockStatus('Leap status     : Not synchronised\n'), 'unsynced');
  t.equal(parseClockStatus('506 Cannot talk to daemon'), 'unknown');
  t.equal(await readClockState(['/nonexistent/chronyc'], Date.now(), null), 'unknown', 'no NTP tool');
  t.equal(await readClockState(['printf', 'Leap status : Normal\\n'], Date.now(), null), 'synced', 'the command is run');
  t.equal(await readClockState(['printf', 'Leap status : Normal\\n'], 1_000, 1_790_000_000_000), 'unsynced', 'a clock behind the build time is unsynced');
});
