// The discovery service against the ONVIF camera simulator on loopback (in-process, each
// camera on its own 127.0.0.x, found by the unicast sweep: no multicast here — the netns test
// in test/e2e/discovery.test.ts does that), with real SQLite and the encrypted credentials.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { startOnvifSim, type OnvifSim } from '../../tools/onvif-sim/sim.ts';
import type { OnvifSimOptions } from '../../tools/onvif-sim/options.ts';
import { openDb } from '../src/store/db.js';
import { Kv } from '../src/store/kv.js';
import { FakeClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { parseConfig } from '../src/config.js';
import { CameraRegistry, type CameraChangeEvent } from '../src/cameras/camera-registry.js';
import { CameraCredentialStore } from '../src/cameras/credentials.js';
import { macKey } from '../src/cameras/camera-key.js';
import { DiscoveryService } from '../src/discovery/discovery-service.js';
import { OnvifDevice } from '../src/discovery/onvif-device.js';

async function sims(t: Test, list: OnvifSimOptions[]): Promise<{ sims: OnvifSim[]; port: number }> {
  const out: OnvifSim[] = [];
  let port = 0;
  for (const o of list) {
    const sim = await startOnvifSim({ discoveryIfaceAddress: o.bind, discoveryPort: port, hello: false, ...o });
    port ||= (sim as unknown as { discovery: { port: number } }).discovery.port;
    out.push(sim);
    t.teardown(() => sim.close());
  }
  return { sims: out, port };
}

function rig(t: Test, port: number, discovery: Record<string, unknown> = {}, arp = '') {
  const dir = t.testdir({ arp: `IP address       HW type     Flags       HW address            Mask     Device\n${arp}` });
  const db = openDb(join(dir, 'agent.db'));
  t.teardown(() => db.close());
  const clock = new FakeClock(Date.now());
  const log = silentLogger();
  const registry = new CameraRegistry({ db, clock, log });
  const credentials = new CameraCredentialStore(new Kv(db), Buffer.alloc(32, 3));
  const config = parseConfig({
    cloudUrl: 'http://127.0.0.1:1',
    discovery: { probeWaitMs: 200, callTimeoutMs: 2000, lostAfterRounds: 2, sweep: { cidr: '127.0.0.0/28', hostWaitMs: 300, concurrency: 16 }, ...discovery },
  }).discovery;
  const events: CameraChangeEvent[] = [];
  const service = new DiscoveryService({
    registry,
    credentials,
    config,
    clock,
    log,
    onChange: (e) => events.push(e),
    probe: { multicast: null, sweepPort: port },
    random: () => 0.5,
    arpTable: join(dir, 'arp'),
  });
  const round = () => service.round(new AbortController().signal);
  return { registry, credentials, service, events, clock, round, db };
}

const changes = (events: CameraChangeEvent[]) => events.map((e) => [e.change, e.camera.key]);
const soap = (sim: OnvifSim) => sim.requests.filter((r) => r.op !== 'snapshot').length;

t.test('two cameras found by key, strings intact; a second round asks nothing', async (t) => {
  const { sims: [a, b], port } = await sims(t, [
    { bind: '127.0.0.2', serial: '000123456', mac: '02:56:00:00:00:02', name: 'Front door', rtspUrl: 'rtsp://127.0.0.2:8554/cam' },
    { bind: '127.0.0.3', serial: '20240615', firmware: '3.10', mac: '02:56:00:00:00:03' },
  ]);
  const r = rig(t, port);
  r.credentials.set(undefined, { username: 'admin', password: 'admin' }, 1);
  await r.round();
  t.same(changes(r.events).sort(), [['found', 'mac-025600000002'], ['found', 'mac-025600000003']]);
  const cam = r.registry.get('mac-025600000002')!;
  t.match(cam, { source: 'onvif', name: 'Front door', serial: '000123456', firmware: '2.40', mac: '02:56:00:00:00:02', address: `127.0.0.2:${a!.port}`, streamUri: 'rtsp://127.0.0.2:8554/cam', present: true, lastError: null });
  t.match(cam.snapshotUri, /^http:\/\/127\.0\.0\.2:\d+\//);
  t.equal(r.registry.get('mac-025600000003')!.firmware, '3.10', 'not 3.1');
  const before = [soap(a!), soap(b!)];
  r.events.length = 0;
  await r.round();
  t.same(r.events, [], 'nothing changed');
  t.same([soap(a!), soap(b!)], before, 'a known, healthy camera is not asked again');
  t.equal(r.service.status().answered, 2);
  t.ok(r.service.check().ok);
});

t.test('a wrong password: a per-camera ONVIF_AUTH_FAILED, a handful of requests, then backoff; right credentials fix it at the next round', async (t) => {
  const { sims: [good, bad], port } = await sims(t, [
    { bind: '127.0.0.2', serial: '1', mac: '02:56:00:00:01:02', password: 'right' },
    { bind: '127.0.0.3', serial: '2', mac: '02:56:00:00:01:03', password: 'other' },
  ]);
  const r = rig(t, port);
  r.credentials.set(undefined, { username: 'admin', password: 'right' }, 1);
  await r.round();
  t.equal(r.registry.get('mac-025600000102')!.lastError, null, 'the other camera is fine');
  const failed = r.events.find((e) => e.camera.key.startsWith('ep-'))!;
  t.match(failed, { change: 'found', camera: { lastError: { code: 'ONVIF_AUTH_FAILED' }, streamUri: null, present: true } });
  const first = soap(bad!);
  t.ok(first <= 5, `${first} requests for one attempt (clock, digest, clock again, digest, text)`);
  for (let i = 0; i < 5; i++) await r.round();
  t.equal(soap(bad!), first, 'rounds within the backoff send nothing to it');
  await r.clock.advance(31_000);
  await r.round();
  t.ok(soap(bad!) > first && soap(bad!) <= 2 * first, 'one attempt after the first backoff step');
  const second = soap(bad!);
  await r.clock.advance(31_000);
  await r.round();
  t.equal(soap(bad!), second, 'the next step is longer (60 s)');
  t.equal(r.service.status().queryFailures, 2);
  // The technician sets this camera's password, by the key the failure is listed under.
  r.credentials.set(failed.camera.key, { username: 'admin', password: 'other' }, 2);
  r.events.length = 0;
  await r.round();
  t.same(changes(r.events), [['found', 'mac-025600000103']]);
  t.equal(r.events[0]!.replaces, failed.camera.key, 'it replaces the provisional record');
  t.equal(r.registry.get(failed.camera.key), undefined);
  t.same(r.credentials.forCamera({ key: 'mac-025600000103' })?.scope, 'mac-025600000103', 'its credentials moved to its real key');
  t.equal(r.registry.get('mac-025600000102')!.lastError, null);
  void good;
});

t.test('credentials by MAC apply before the camera lets us in (its MAC from the neighbour table)', async (t) => {
  const { sims: [cam], port } = await sims(t, [{ bind: '127.0.0.2', serial: '3', mac: '02:56:00:00:05:02', password: 'own' }]);
  const r = rig(t, port, {}, `127.0.0.2        0x1         0x2         02:56:00:00:05:02     *        eth0\n127.0.0.9        0x1         0x0         02:56:00:00:05:09     *        eth0\n`);
  r.credentials.set(undefined, { username: 'admin', password: 'site' }, 1);
  r.credentials.set('02:56:00:00:05:02', { username: 'admin', password: 'own' }, 1);
  await r.round();
  t.same(changes(r.events), [['found', 'mac-025600000502']], 'identified at the first round');
  t.notOk(cam!.requests.some((q) => q.outcome.startsWith('unauthorized')), 'the site default was never tried');
});

t.test("a camera whose clock is 10 minutes off: digest auth still works; a clock reset later is survived", async (t) => {
  const { sims: [cam], port } = await sims(t, [{ bind: '127.0.0.2', serial: '7', mac: '02:56:00:00:02:02', clockOffsetS: 600 }]);
  const r = rig(t, port);
  r.credentials.set(undefined, { username: 'admin', password: 'admin' }, 1);
  await r.round();
  t.same(changes(r.events), [['found', 'mac-025600000202']]);
  t.notOk(cam!.requests.some((q) => q.outcome.startsWith('unauthorized')), 'never refused');
  // The device client measured the offset; a reset clock (offset -900 s) is re-measured after one refusal.
  const dev = new OnvifDevice({ xaddr: cam!.xaddr, clock: r.clock, credentials: { username: 'admin', password: 'admin' } });
  t.ok(Math.abs((await dev.measureClock()) - 600_000) < 5_000, 'offset measured');
  cam!.setClockOffset(-900);
  const info = await dev.getDeviceInformation();
  t.equal(info.serialNumber, '7');
  t.ok(Math.abs(dev.clockOffsetMs! + 900_000) < 5_000, 'offset measured again after the refusal');
  t.equal(dev.authMode, 'digest');
});

t.test('PasswordText when the camera refuses every digest, and never when the config says no', async (t) => {
  // authWindowS 0: no digest's Created is ever fresh enough; the password as text is accepted.
  const { sims: [cam] } = await sims(t, [{ bind: '127.0.0.2', serial: '8', mac: '02:56:00:00:03:02', authWindowS: 0, passwordText: true }]);
  const credentials = { username: 'admin', password: 'admin' };
  const strict = new OnvifDevice({ xaddr: cam!.xaddr, clock: new FakeClock(Date.now()), credentials, passwordText: false });
  await t.rejects(strict.getDeviceInformation(), { code: 'ONVIF_AUTH_FAILED' });
  t.notOk(cam!.requests.some((q) => q.op === 'GetDeviceInformation' && q.outcome === 'ok'), 'no text password sent');
  const dev = new OnvifDevice({ xaddr: cam!.xaddr, clock: new FakeClock(Date.now()), credentials });
  t.equal((await dev.getDeviceInformation()).serialNumber, '8');
  t.equal(dev.authMode, 'text', 'the mode that works is kept');
  const n = cam!.requests.length;
  await dev.getProfiles(cam!.xaddr.replace('device_service', 'media_service'));
  t.equal(cam!.requests.length, n + 1, 'the next call goes straight to text');
});

t.test('the camera moves to another address: same key, address_changed; lost after N rounds; returned', async (t) => {
  const opts = { serial: '9', mac: '02:56:00:00:04:02' };
  const { sims: [cam], port } = await sims(t, [{ bind: '127.0.0.2', ...opts }]);
  const r = rig(t, port);
  r.credentials.set(undefined, { username: 'admin', password: 'admin' }, 1);
  await r.round();
  const key = macKey(opts.mac)!;
  t.same(changes(r.events), [['found', key]]);
  await cam!.close();
  const moved = await startOnvifSim({ bind: '127.0.0.5', discoveryIfaceAddress: '127.0.0.5', discoveryPort: port, hello: false, ...opts });
  t.teardown(() => moved.close());
  r.events.length = 0;
  await r.round();
  t.same(changes(r.events), [['address_changed', key]]);
  t.equal(r.events[0]!.previousAddress, `127.0.0.2:${cam!.port}`);
  t.equal(r.registry.get(key)!.address, `127.0.0.5:${moved.port}`);
  t.equal(r.registry.list().length, 1);
  await moved.close();
  r.events.length = 0;
  await r.round();
  t.same(r.events, [], 'one miss');
  await r.round();
  t.same(changes(r.events), [['lost', key]]);
  t.equal(r.registry.get(key)!.present, false);
  const back = await startOnvifSim({ bind: '127.0.0.5', discoveryIfaceAddress: '127.0.0.5', discoveryPort: port, hello: false, ...opts, port: moved.port });
  t.teardown(() => back.close());
  r.events.length = 0;
  await r.round();
  t.same(changes(r.events), [['returned', key]]);
});

t.test('a round that cannot probe changes nothing and says why; the loop stops at once', async (t) => {
  const r = rig(t, 9, { interfaceAddress: '192.0.2.77' });
  await r.round();
  t.match(r.service.status(), { rounds: 1, lastSuccessAt: null, lastError: /^DISCOVERY_SOCKET/ });
  t.same(r.events, []);
  await r.clock.advance(4 * 300_000);
  t.match(r.service.check(), { ok: false, reason: /no discovery round succeeded ever \(DISCOVERY_SOCKET/ });
  const ac = new AbortController();
  const running = r.service.start(ac.signal);
  await new Promise((res) => setTimeout(res, 50));
  ac.abort();
  await running;
  t.pass('stopped');
});

t.test('discovery off: start() only waits for its stop', async (t) => {
  const r = rig(t, 9, { enabled: false });
  const ac = new AbortController();
  const running = r.service.start(ac.signal);
  ac.abort();
  await running;
  t.equal(r.service.status().rounds, 0);
  t.ok(r.service.check().ok);
});
