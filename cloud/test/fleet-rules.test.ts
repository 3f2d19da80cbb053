import t from 'tap';
import type { CameraWatch, FleetDevice, QueueSample } from '../src/store/fleet-types.js';
import type { CameraInventory } from '../src/store/inventory-types.js';
import {
  backlogDecision,
  cameraOfflineDecision,
  duration,
  growingVariants,
  nextFrozenRun,
  silentDecision,
  type FleetThresholds,
} from '../src/fleet/rules.js';

// Unit tests of the pure rules (no cloud, no clock): the edge cases the integration tests
// would need many minutes of fake time for.

const T: FleetThresholds = {
  deviceSilentMs: 300_000,
  cameraSilentMs: 300_000,
  frozenFrames: 10,
  frozenMaxDistance: 16,
  backlogHeartbeats: 3,
  backlogMinAgeMs: 60_000,
};

const sample = (compressed: number, original: number, oldest: number | null = 120_000): QueueSample => ({
  receivedAt: 0,
  depth: { compressed, original },
  oldestAgeMs: { compressed: oldest, original: oldest },
});

t.test('growingVariants: strictly growing over k samples, with an old enough head', async (t) => {
  t.same(growingVariants([sample(1, 0), sample(2, 0), sample(3, 0)], 3, 60_000), ['compressed']);
  t.same(growingVariants([sample(1, 1), sample(2, 2), sample(3, 3)], 3, 60_000), ['compressed', 'original']);
  t.same(growingVariants([sample(1, 0), sample(2, 0)], 3, 60_000), [], 'fewer samples than k');
  t.same(growingVariants([sample(1, 0), sample(2, 0), sample(2, 0)], 3, 60_000), [], 'flat is not growing');
  t.same(growingVariants([sample(5, 0), sample(1, 0), sample(2, 0), sample(3, 0)], 3, 60_000), ['compressed'], 'only the last k count');
  t.same(growingVariants([sample(1, 0), sample(2, 0), sample(3, 0, 59_999)], 3, 60_000), [], 'young head');
  t.same(growingVariants([sample(1, 0), sample(2, 0), sample(3, 0, null)], 3, 0), ['compressed'], 'min age 0 accepts an unknown age');
});

t.test('backlogDecision: open on growth, close only on shrinking or empty, else hold', async (t) => {
  t.match(backlogDecision('d', [sample(1, 0), sample(2, 0), sample(3, 0)], T), { action: 'open', kind: 'backlog_growing' });
  t.equal(backlogDecision('d', [sample(3, 0), sample(3, 0)], T), null, 'stuck: hold');
  t.equal(backlogDecision('d', [sample(3, 1), sample(2, 2)], T), null, 'one shrinks, one grows: hold');
  t.match(backlogDecision('d', [sample(3, 2), sample(2, 2)], T), { action: 'close' });
  t.match(backlogDecision('d', [sample(0, 0), sample(0, 0)], T), { action: 'close' }, 'empty');
  t.equal(backlogDecision('d', [sample(3, 0)], T), null, 'one sample says nothing');
  t.equal(backlogDecision('d', [], T), null);
});

const device = (o: Partial<FleetDevice['device']> = {}): FleetDevice['device'] => ({
  id: 'dev_1',
  siteId: 'site_1',
  site: 'Cafe',
  hardwareId: 'hw',
  name: 'pi',
  createdAt: 0,
  claimedAt: 0,
  lastSeenAt: null,
  revokedAt: null,
  inventoryReceivedAt: null,
  ...o,
});

t.test('silentDecision: from the last heartbeat, the claim, or the start of watching — the latest', async (t) => {
  const health = (receivedAt: number) => ({ receivedAt }) as FleetDevice['health'];
  t.match(silentDecision({ device: device(), health: health(1_000) }, 301_001, 0, T), { action: 'open', detail: { lastHeartbeatAt: 1_000, silentForMs: 300_001 } });
  t.match(silentDecision({ device: device(), health: health(1_000) }, 301_000, 0, T), { action: 'close' }, 'exactly the threshold');
  t.match(silentDecision({ device: device({ claimedAt: 100_000 }), health: health(1_000) }, 301_001, 0, T), { action: 'close' }, 're-claimed since');
  t.match(silentDecision({ device: device(), health: null }, 301_001, 200_000, T), { action: 'close' }, 'the cloud started 101 s ago');
  t.match(silentDecision({ device: device(), health: null }, 301_001, 0, T), { action: 'open', detail: { lastHeartbeatAt: null } });
});

t.test('nextFrozenRun: within the distance of the first frame extends the run; late frames change nothing', async (t) => {
  const a = '0'.repeat(1024);
  const near = '3' + '0'.repeat(1023); // 2 bits
  const far = 'f'.repeat(8) + '0'.repeat(1016); // 32 bits
  let run = nextFrozenRun({ refDhash: null, count: 0, lastCapturedAt: null }, { capturedAt: 1, dhash: a }, 16)!;
  t.same(run, { refDhash: a, count: 1, lastCapturedAt: 1 });
  run = nextFrozenRun(run, { capturedAt: 2, dhash: near }, 16)!;
  t.same(run, { refDhash: a, count: 2, lastCapturedAt: 2 }, 'the reference stays the first frame');
  t.equal(nextFrozenRun(run, { capturedAt: 2, dhash: a }, 16), null, 'same capture time: a retry');
  t.equal(nextFrozenRun(run, { capturedAt: 1, dhash: a }, 16), null, 'older: a late upload');
  t.same(nextFrozenRun(run, { capturedAt: 3, dhash: far }, 16), { refDhash: far, count: 1, lastCapturedAt: 3 }, 'a different frame starts over');
  t.same(nextFrozenRun(run, { capturedAt: 3, dhash: far }, 32), { refDhash: a, count: 3, lastCapturedAt: 3 }, 'unless the threshold allows it');
  t.same(nextFrozenRun(run, { capturedAt: 3, dhash: 'ab' }, 4096), { refDhash: 'ab', count: 1, lastCapturedAt: 3 }, 'another hash length is another picture');
});

const inventory = (o: Partial<CameraInventory> = {}): CameraInventory => ({
  name: 'Till',
  source: 'onvif',
  manufacturer: 'Axis',
  model: 'M3106',
  firmware: null,
  serial: null,
  mac: null,
  address: '10.0.0.7',
  capturePath: 'rtsp',
  present: true,
  lastError: null,
  lastSeenAt: 1_000,
  listed: true,
  receivedAt: 1_000,
  unlistedAt: null,
  ...o,
});
const watched = (o: Partial<CameraWatch> = {}): CameraWatch => ({
  cameraId: 'cam_1',
  deviceId: 'dev_1',
  key: 'cam-till',
  name: 'Till',
  createdAt: 0,
  reported: null,
  inventory: null,
  lastFrameAt: 10_000,
  frozen: { refDhash: null, count: 0, lastCapturedAt: null },
  ...o,
});
const reported = (state: 'ok' | 'failing' | 'stopped') => ({ state, name: 'Till', lastError: null, lastCaptureAt: null, failures: 0 });

t.test('cameraOfflineDecision: a camera the inventory lists as not found is offline, whatever the last heartbeat said', async (t) => {
  const missing = inventory({ present: false, lastError: 'ONVIF_UNREACHABLE: no answer' });
  t.match(cameraOfflineDecision('pi', watched({ inventory: missing }), 20_000, 0, T), {
    action: 'open',
    kind: 'camera_offline',
    cameraId: 'cam_1',
    title: 'Camera Till on pi is missing: the device no longer finds it (last seen at 10.0.0.7)',
    detail: { reason: 'missing', lastSeenAt: 1_000, address: '10.0.0.7', lastError: 'ONVIF_UNREACHABLE: no answer', state: null },
  });
  t.match(
    cameraOfflineDecision('pi', watched({ inventory: missing, reported: reported('stopped') }), 20_000, 0, T),
    { action: 'open', detail: { reason: 'missing', state: 'stopped' } },
    'missing says more than stopped',
  );
  t.match(
    cameraOfflineDecision('pi', watched({ inventory: missing, reported: reported('ok') }), 20_000, 0, T),
    { action: 'open', detail: { reason: 'missing', state: 'ok' } },
    'a heartbeat sent before discovery lost it',
  );
  t.match(cameraOfflineDecision('pi', watched({ inventory: inventory(), reported: reported('ok') }), 20_000, 0, T), { action: 'close' }, 'found again');
  t.equal(cameraOfflineDecision('pi', watched({ inventory: { ...missing, listed: false, unlistedAt: 5_000 } }), 20_000, 0, T), null, 'dropped from the inventory: left alone');
  t.equal(cameraOfflineDecision('pi', watched({ inventory: inventory() }), 20_000, 0, T), null, 'present, not in the heartbeat: left alone');
  t.equal(cameraOfflineDecision('pi', watched(), 20_000, 0, T), null, 'in neither: left alone');
});

t.test('duration', async (t) => {
  t.equal(duration(45_000), '45 s');
  t.equal(duration(300_000), '5 min');
  t.equal(duration(7_500_000), '2 h 5 min');
  t.equal(duration(7_200_000), '2 h');
  t.equal(duration(86_400_000 * 3 + 3_600_000 * 4), '3 d 4 h');
});

