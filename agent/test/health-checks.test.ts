import t from 'tap';
import { checkCameras, checkProcess, checkQueue, checkSupervision, checkUploaders, cameraState, LIVENESS_GRACE_MS, type CameraSnapshot, type CheckLimits, type Snapshot, type TickMemory } from '../src/health/checks.js';

const LIMITS: CheckLimits = {
  maxLoopLagMs: 5_000,
  maxRssBytes: 512 * 1024 ** 2,
  maxIdleCpu: 0.8,
  minFreeDiskBytes: 256 * 1024 ** 2,
  cameraFailingIntervals: 3,
  maxUploadStepMs: 120_000,
  maxQueueAgeMs: 3_600_000,
  livenessGraceMs: LIVENESS_GRACE_MS,
};
const MB = 1024 ** 2;

const camera = (o: Partial<CameraSnapshot> = {}): CameraSnapshot => ({
  id: 'c1',
  name: 'Till',
  intervalMs: 30_000,
  captureTimeoutMs: 120_000,
  alive: true,
  ticks: 10,
  capturesOk: 10,
  failures: 0,
  inFlightSince: null,
  lastSuccessAt: 1_000_000,
  lastCaptureAt: Date.UTC(2026, 0, 1),
  lastError: null,
  ...o,
});

const snap = (o: Partial<Snapshot> = {}): Snapshot => ({
  at: 1_000_000,
  agentUptimeMs: 3_600_000,
  cameras: [],
  uploaders: [],
  failedParts: [],
  queue: [],
  loopLagMaxMs: 10,
  cpuMs: 0,
  rssBytes: 100 * MB,
  heapUsedBytes: 40 * MB,
  disk: { totalBytes: 16_000 * MB, freeBytes: 8_000 * MB },
  clock: 'synced',
  ...o,
});

t.test('camera state: ok, failing after its allowance, stopped when its worker is down', async (t) => {
  const allowance = 3 * 30_000 + 120_000;
  t.equal(cameraState(camera(), LIMITS, snap()), 'ok');
  t.equal(cameraState(camera({ lastSuccessAt: 1_000_000 - allowance }), LIMITS, snap()), 'ok', 'just inside');
  t.equal(cameraState(camera({ lastSuccessAt: 1_000_000 - allowance - 1 }), LIMITS, snap()), 'failing');
  t.equal(cameraState(camera({ lastSuccessAt: null }), LIMITS, snap({ agentUptimeMs: 60_000 })), 'ok', 'no verdict right after start');
  t.equal(cameraState(camera({ lastSuccessAt: null }), LIMITS, snap()), 'failing', 'never captured in an hour');
  t.equal(cameraState(camera({ alive: false }), LIMITS, snap()), 'stopped');
});

t.test('cameras: a failing camera is reported, not escalated; a worker that stopped ticking is', async (t) => {
  const ticks: TickMemory = new Map();
  const down = camera({ lastSuccessAt: 0, lastError: 'CAPTURE_TIMEOUT: no frame' });
  const f = checkCameras(snap({ cameras: [down] }), ticks, LIMITS);
  t.same(f.map((x) => [x.check, x.remedy]), [['camera', 'report']]);
  t.match(f[0]!.reason, /camera c1: no good capture for 1000 s \(CAPTURE_TIMEOUT: no frame\)/);

  const still = 3 * 30_000 + LIVENESS_GRACE_MS;
  t.same(checkCameras(snap({ at: 1_000_000 + still, cameras: [camera({ lastSuccessAt: 1_000_000 + still })] }), ticks, LIMITS), [], 'ticks unchanged, but not long enough');
  const hung = checkCameras(snap({ at: 1_000_001 + still, cameras: [camera({ lastSuccessAt: 1_000_001 + still })] }), ticks, LIMITS);
  t.same(hung.map((x) => [x.check, x.remedy]), [['camera_worker', 'restart_agent']], 'no tick for 3 intervals + grace: hung');
  t.same(checkCameras(snap({ at: 1_000_002 + still, cameras: [camera({ ticks: 11, lastSuccessAt: 1_000_002 + still })] }), ticks, LIMITS), [], 'a new tick clears it');

  const stuck = camera({ inFlightSince: 0, lastSuccessAt: 1_000_000 });
  t.same(checkCameras(snap({ cameras: [stuck] }), new Map(), LIMITS).map((x) => x.remedy), ['restart_agent'], 'a capture running far past its timeout');
  t.same(checkCameras(snap({ cameras: [camera({ alive: false, lastSuccessAt: 0 })] }), new Map(), LIMITS), [], 'a stopped worker is the supervision check\'s business');
});

t.test('uploaders: liveness whether or not anything is queued', async (t) => {
  const base = { camera: 'c1', variant: 'compressed' as const, alive: true, uploaded: 0 };
  t.same(checkUploaders(snap({ uploaders: [{ ...base, stepStartedAt: null, nextStepAt: 1_000_000 - LIVENESS_GRACE_MS }] }), LIMITS), [], 'idle, next pass due within the grace');
  const overdue = checkUploaders(snap({ uploaders: [{ ...base, stepStartedAt: null, nextStepAt: 1_000_000 - LIVENESS_GRACE_MS - 1 }] }), LIMITS);
  t.same(overdue.map((x) => [x.check, x.part, x.remedy]), [['uploader', 'uploader:c1/compressed', 'restart_agent']], 'an idle uploader whose next pass never came');
  const long = checkUploaders(snap({ uploaders: [{ ...base, stepStartedAt: 1_000_000 - 120_000 - LIVENESS_GRACE_MS - 1, nextStepAt: null }] }), LIMITS);
  t.match(long[0]!.reason, /one pass running for 180 s/);
  t.same(checkUploaders(snap({ uploaders: [{ ...base, alive: false, stepStartedAt: 0, nextStepAt: null }] }), LIMITS), [], 'a stopped uploader is the supervision check\'s business');
});

t.test('supervision: a subtree that gave up is restarted as a part', async (t) => {
  t.same(checkSupervision(snap({ failedParts: [{ path: 'cameras/camera:c1/uploads', reason: 'gave up' }] })), [
    { check: 'supervision', part: 'cameras/camera:c1/uploads', reason: 'gave up', remedy: 'restart_part' },
  ]);
});

t.test('process: lag twice in a row, memory, CPU without progress, disk, clock', async (t) => {
  const prev = snap({ at: 0, cpuMs: 0 });
  t.same(checkProcess(prev, snap({ at: 60_000, cpuMs: 1_000 }), LIMITS, []), [], 'a healthy minute');

  const lag = snap({ at: 60_000, loopLagMaxMs: 6_000 });
  t.same(checkProcess(prev, lag, LIMITS, []).map((f) => [f.check, f.remedy]), [['event_loop', 'report']], 'one late loop is only reported');
  t.same(checkProcess(lag, snap({ at: 120_000, loopLagMaxMs: 6_000 }), LIMITS, []).map((f) => [f.check, f.remedy]), [['event_loop', 'restart_agent']], 'twice in a row restarts');

  t.same(checkProcess(null, snap({ rssBytes: 600 * MB }), LIMITS, []).map((f) => [f.check, f.remedy]), [['memory', 'restart_agent']], 'over the limit');
  t.same(checkProcess(null, snap({ rssBytes: 200 * MB }), LIMITS, [100 * MB]).map((f) => [f.check, f.remedy]), [['memory', 'report']], 'doubled: growth reported');
  t.same(checkProcess(null, snap({ rssBytes: 140 * MB }), LIMITS, [100 * MB]), [], 'small growth is not');

  const cams = [camera({ capturesOk: 5 })];
  const spinning = checkProcess(snap({ at: 0, cpuMs: 0, cameras: cams }), snap({ at: 60_000, cpuMs: 57_000, cameras: cams }), LIMITS, []);
  t.same(spinning.map((f) => [f.check, f.remedy]), [['cpu', 'restart_agent']], 'the spinning zombie');
  t.match(spinning[0]!.reason, /95 % CPU for 60 s while no capture and no upload moved/);
  const busy = checkProcess(snap({ at: 0, cpuMs: 0, cameras: cams }), snap({ at: 60_000, cpuMs: 57_000, cameras: [camera({ capturesOk: 6 })] }), LIMITS, []);
  t.same(busy, [], 'busy while working is fine');

  t.same(checkProcess(null, snap({ disk: { totalBytes: 16_000 * MB, freeBytes: 100 * MB } }), LIMITS, []).map((f) => [f.check, f.remedy]), [['disk', 'report']]);
  t.same(checkProcess(null, snap({ clock: 'unsynced' }), LIMITS, []).map((f) => [f.check, f.remedy]), [['clock', 'report']]);
  t.same(checkProcess(null, snap({ clock: 'unknown', disk: null }), LIMITS, []), [], 'unknown is not a problem');
});

t.test('queue: an old backlog is reported per variant, never escalated', async (t) => {
  const q = (variant: 'compressed' | 'original', depth: number, oldestAgeMs: number | null) => ({ camera: 'c1', variant, depth, oldestAgeMs });
  t.same(checkQueue(snap({ queue: [q('compressed', 5, 3_600_000), q('original', 9, 3_000_000)] }), LIMITS), [], 'an hour is allowed');
  const old = checkQueue(snap({ queue: [q('compressed', 5, 3_600_001), { ...q('compressed', 2, 60_000), camera: 'c2' }, q('original', 0, null)] }), LIMITS);
  t.same(old, [{ check: 'queue', part: null, reason: '7 compressed captures queued, the oldest 3600 s old', remedy: 'report' }]);
});
