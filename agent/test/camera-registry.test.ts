// The camera registry on real SQLite: keys from MAC or serial (never the IP), an IP change is
// the same camera with an address_changed event, lost after N rounds, returned, provisional
// records for cameras that refuse us, and configured cameras that discovery never touches.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { openDb } from '../src/store/db.js';
import { FakeClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { parseConfig } from '../src/config.js';
import { CameraRegistry, CAMERA_CHANGES_KEPT, type DiscoveredCamera } from '../src/cameras/camera-registry.js';
import { cameraKey, endpointKey, macKey, serialKey } from '../src/cameras/camera-key.js';

function rig(t: Test) {
  const dir = t.testdir({});
  const db = openDb(join(dir, 'agent.db'));
  t.teardown(() => db.close());
  const clock = new FakeClock(Date.UTC(2026, 10, 23, 12));
  const registry = new CameraRegistry({ db, clock, log: silentLogger() });
  return { db, clock, registry, dir };
}

const cam = (over: Partial<DiscoveredCamera> = {}): DiscoveredCamera => ({
  endpoint: 'urn:uuid:4d454930-3130-3132-3033-001122aabbcc',
  xaddr: 'http://192.168.1.64/onvif/device_service',
  name: 'Front door',
  manufacturer: 'HIKVISION',
  model: 'DS-2CD2043G0-I',
  firmware: '2.40',
  serial: '0012345678',
  mac: '00:11:22:AA:BB:CC',
  streamUri: 'rtsp://192.168.1.64:554/Streaming/Channels/101',
  snapshotUri: 'http://192.168.1.64/onvif-http/snapshot?Profile_1',
  ...over,
});

t.test('keys: MAC, else serial, else endpoint; never the address', async (t) => {
  t.equal(macKey('00-11-22-AA-BB-CC'), 'mac-001122aabbcc');
  t.equal(macKey('00:00:00:00:00:00'), null);
  t.equal(serialKey('0012345678'), 'sn-0012345678');
  t.match(serialKey('AB 12/34'), /^sn-ab-12-34-[0-9a-f]{8}$/);
  t.match(serialKey('x'.repeat(80)), /^sn-x{40}-[0-9a-f]{8}$/);
  t.equal(endpointKey('urn:uuid:4D454930-3130-3132-3033-001122AABBCC'), 'ep-4d454930-3130-3132-3033-001122aabbcc');
  t.match(endpointKey('http://odd/endpoint'), /^ep-[0-9a-f]{32}$/);
  t.equal(cameraKey({ mac: null, serial: '42', endpoint: 'urn:uuid:x' }), 'sn-42');
  for (const k of [serialKey('AB 12/34'), endpointKey('http://odd/endpoint'), macKey('001122aabbcc')!]) t.match(k, /^[A-Za-z0-9_-]{1,64}$/, 'a key can name a spool folder');
});

t.test('a new camera is found, with strings kept as the camera sent them', async (t) => {
  const { registry } = rig(t);
  const events = registry.upsertDiscovered(cam());
  t.same(events.map((e) => e.change), ['found']);
  const rec = registry.get('mac-001122aabbcc')!;
  t.match(rec, {
    key: 'mac-001122aabbcc',
    source: 'onvif',
    name: 'Front door',
    firmware: '2.40',
    serial: '0012345678',
    mac: '00:11:22:aa:bb:cc',
    address: '192.168.1.64',
    present: true,
    lastError: null,
  });
  t.same(events[0]!.camera, rec, 'the event carries the record');
  t.same(registry.upsertDiscovered(cam()), [], 'seen again unchanged: no event');
});

t.test('the camera moves to another IP: same key, address_changed with the old address and the time', async (t) => {
  const { registry, clock } = rig(t);
  registry.upsertDiscovered(cam());
  await clock.advance(300_000);
  const events = registry.upsertDiscovered(
    cam({ xaddr: 'http://192.168.1.77:8080/onvif/device_service', streamUri: 'rtsp://192.168.1.77:554/Streaming/Channels/101' }),
  );
  t.same(events.map((e) => e.change), ['address_changed']);
  t.equal(events[0]!.previousAddress, '192.168.1.64');
  t.equal(events[0]!.camera.key, 'mac-001122aabbcc');
  t.equal(events[0]!.camera.address, '192.168.1.77:8080');
  t.equal(events[0]!.camera.streamUri, 'rtsp://192.168.1.77:554/Streaming/Channels/101');
  t.equal(registry.list().length, 1, 'one camera, not two');
  t.match(registry.history('mac-001122aabbcc')[0], { change: 'address_changed', at: clock.now(), address: '192.168.1.77:8080', previousAddress: '192.168.1.64' });
});

t.test('lost after N rounds without it (kept, present=false), returned when seen again', async (t) => {
  const { registry } = rig(t);
  registry.upsertDiscovered(cam());
  const other = cam({ endpoint: 'urn:uuid:00000000-0000-4000-8000-000000000002', mac: '00:11:22:00:00:02', serial: '2' });
  registry.upsertDiscovered(other);
  const key = 'mac-001122aabbcc';
  t.same(registry.endRound([key, 'mac-001122000002'], 3), []);
  t.same(registry.endRound(['mac-001122000002'], 3), [], 'one miss');
  t.same(registry.endRound(['mac-001122000002'], 3), [], 'two misses');
  const lost = registry.endRound(['mac-001122000002'], 3);
  t.same(lost.map((e) => [e.change, e.camera.key]), [['lost', key]]);
  t.equal(registry.get(key)!.present, false, 'kept, not present');
  t.same(registry.endRound(['mac-001122000002'], 3), [], 'lost once only');
  const back = registry.upsertDiscovered(cam());
  t.same(back.map((e) => e.change), ['returned']);
  t.equal(registry.get(key)!.present, true);
  t.same(registry.endRound([], 3), [], 'the miss count starts again');
});

t.test('returned at another address: both events', async (t) => {
  const { registry } = rig(t);
  registry.upsertDiscovered(cam());
  registry.endRound([], 1);
  const events = registry.upsertDiscovered(cam({ xaddr: 'http://192.168.1.90/onvif/device_service' }));
  t.same(events.map((e) => e.change), ['returned', 'address_changed']);
});

t.test('a new firmware or stream URI is an update', async (t) => {
  const { registry } = rig(t);
  registry.upsertDiscovered(cam());
  const events = registry.upsertDiscovered(cam({ firmware: '2.41' }));
  t.same(events.map((e) => e.change), ['updated']);
  t.equal(events[0]!.camera.firmware, '2.41');
});

t.test('no MAC this time (GetNetworkInterfaces failed): still the same camera, by serial', async (t) => {
  const { registry } = rig(t);
  registry.upsertDiscovered(cam());
  const events = registry.upsertDiscovered(cam({ mac: null, xaddr: 'http://192.168.1.65/onvif/device_service' }));
  t.same(events.map((e) => [e.change, e.camera.key]), [['address_changed', 'mac-001122aabbcc']]);
  t.equal(registry.get('mac-001122aabbcc')!.mac, '00:11:22:aa:bb:cc', 'the MAC is kept');
  t.equal(registry.list().length, 1);
});

t.test('two cameras with the same junk serial but different MACs stay two cameras', async (t) => {
  const { registry } = rig(t);
  registry.upsertDiscovered(cam({ serial: '123456' }));
  registry.upsertDiscovered(cam({ serial: '123456', mac: '00:11:22:00:00:09', endpoint: 'urn:uuid:00000000-0000-4000-8000-000000000009' }));
  t.same(registry.list().map((c) => c.key).sort(), ['mac-001122000009', 'mac-001122aabbcc']);
});

t.test('a wrong password: a provisional record with the error, replaced once the camera lets us in', async (t) => {
  const { registry, clock } = rig(t);
  const failure = { endpoint: cam().endpoint, xaddr: cam().xaddr, name: 'Front door', error: { code: 'ONVIF_AUTH_FAILED', message: 'refused user "admin"' } };
  const first = registry.recordFailure(failure);
  t.same(first.map((e) => e.change), ['found']);
  const prov = first[0]!.camera;
  t.equal(prov.key, 'ep-4d454930-3130-3132-3033-001122aabbcc');
  t.match(prov, { streamUri: null, snapshotUri: null, present: true, lastError: { code: 'ONVIF_AUTH_FAILED', at: clock.now() } });
  t.same(registry.recordFailure(failure), [], 'the same error again: no event');
  await clock.advance(60_000);
  const fixed = registry.upsertDiscovered(cam());
  t.same(fixed.map((e) => [e.change, e.camera.key, e.replaces]), [['found', 'mac-001122aabbcc', prov.key]]);
  t.equal(registry.get(prov.key), undefined, 'the provisional record is gone');
  t.equal(registry.get('mac-001122aabbcc')!.firstSeenAt, prov.firstSeenAt, 'first seen when it was first seen');
  t.equal(registry.get('mac-001122aabbcc')!.lastError, null);
});

t.test('a known camera that starts failing keeps its record and gets the error; success clears it', async (t) => {
  const { registry } = rig(t);
  registry.upsertDiscovered(cam());
  const err = registry.recordFailure({ endpoint: cam().endpoint, xaddr: 'http://192.168.1.99/onvif/device_service', name: null, error: { code: 'ONVIF_TIMEOUT', message: 'no answer' } });
  t.same(err.map((e) => [e.change, e.camera.key, e.camera.lastError?.code]), [['updated', 'mac-001122aabbcc', 'ONVIF_TIMEOUT']]);
  t.equal(registry.get('mac-001122aabbcc')!.address, '192.168.1.64', 'not moved until identified at the new address');
  const ok = registry.upsertDiscovered(cam());
  t.same(ok.map((e) => e.change), ['updated']);
  t.equal(ok[0]!.camera.lastError, null);
});

t.test('configured cameras: their config id as key, source config, never touched by discovery', async (t) => {
  const { registry } = rig(t);
  const config = parseConfig({
    cloudUrl: 'http://127.0.0.1:1',
    cameras: [
      { id: 'mac-001122aabbcc', url: 'rtsp://10.0.0.5/live' },
      { id: 'yard', name: 'Yard', url: 'rtsp://u:p@10.0.0.6:8554/s' },
    ],
  });
  const events = registry.syncConfig(config.cameras);
  t.same(events.map((e) => [e.change, e.camera.key, e.camera.source]), [
    ['found', 'mac-001122aabbcc', 'config'],
    ['found', 'yard', 'config'],
  ]);
  t.same(registry.syncConfig(config.cameras), [], 'unchanged config: no events');
  t.same(registry.upsertDiscovered(cam()), [], 'a discovered camera with a configured key is ignored');
  t.equal(registry.get('mac-001122aabbcc')!.streamUri, 'rtsp://10.0.0.5/live');
  for (let i = 0; i < 5; i++) registry.endRound([], 1);
  t.ok(registry.list().every((c) => c.present), 'discovery rounds never lose a configured camera');
  t.equal(registry.get('yard')!.address, '10.0.0.6:8554');
  const shrunk = parseConfig({ cloudUrl: 'http://127.0.0.1:1', cameras: [{ id: 'yard', name: 'Yard 2', url: 'rtsp://10.0.0.6:8554/s' }] });
  t.same(registry.syncConfig(shrunk.cameras).map((e) => [e.change, e.camera.key]), [['updated', 'yard']]);
  t.same(registry.list().map((c) => c.key), ['yard'], 'a camera removed from the config is removed');
});

t.test('the change history is bounded', async (t) => {
  const { registry, db } = rig(t);
  registry.upsertDiscovered(cam());
  for (let i = 0; i < CAMERA_CHANGES_KEPT + 20; i++) registry.upsertDiscovered(cam({ firmware: String(i) }));
  const n = (db.prepare('SELECT count(*) AS n FROM camera_changes').get() as { n: number }).n;
  t.ok(n <= CAMERA_CHANGES_KEPT + 1, `${n} rows`);
  t.equal(registry.history(undefined, 1)[0]!.change, 'updated');
});

t.test('records survive a restart (a new registry on the same file)', async (t) => {
  const { registry, dir, clock } = rig(t);
  registry.upsertDiscovered(cam());
  const db2 = openDb(join(dir, 'agent.db'));
  t.teardown(() => db2.close());
  const again = new CameraRegistry({ db: db2, clock, log: silentLogger() });
  t.same(again.list(), registry.list());
  t.equal(again.byEndpoint(cam().endpoint)!.key, 'mac-001122aabbcc');
});
