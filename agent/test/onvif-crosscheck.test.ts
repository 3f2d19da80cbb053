// Our ONVIF client against agsh's onvif 0.8.3 (an independent, widely used client), both
// reading the same simulated camera: they must agree on what the camera is and where its
// pictures are. Where they differ is where we chose to differ: agsh turns "2.40" into 2.4, and
// reports a wrong password as a connect that "succeeds" with no profiles.
import t from 'tap';
import { createRequire } from 'node:module';
import { startOnvifSim } from '../../tools/onvif-sim/sim.ts';
import { OnvifDevice } from '../src/discovery/onvif-device.js';
import { systemClock } from '../src/lib/clock.js';

interface AgshCam {
  profiles?: { $: { token: string } }[];
  getDeviceInformation(cb: (err: Error | null, info: Record<string, unknown>) => void): void;
  getStreamUri(o: { protocol: string; profileToken: string }, cb: (err: Error | null, s: { uri: string }) => void): void;
  getSnapshotUri(o: { profileToken: string }, cb: (err: Error | null, s: { uri: string }) => void): void;
}
type AgshCamCtor = new (o: Record<string, unknown>, cb: (this: AgshCam, err: Error | null) => void) => AgshCam;
const { Cam } = createRequire(import.meta.url)('onvif') as { Cam: AgshCamCtor };

/** agsh's callbacks may fire twice: the first one wins. */
function once<T>(fn: (cb: (err: Error | null, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    let done = false;
    fn((err, v) => {
      if (done) return;
      done = true;
      if (err) reject(err);
      else resolve(v);
    });
  });
}

function agshConnect(o: { hostname: string; port: number; username: string; password: string }): Promise<AgshCam> {
  return new Promise((resolve, reject) => {
    let done = false;
    new Cam({ ...o, timeout: 5000 }, function (err) {
      if (done) return;
      done = true;
      if (err) reject(err);
      else resolve(this);
    });
  });
}

t.test('agsh and our client agree on the camera and its URIs', async (t) => {
  const sim = await startOnvifSim({ bind: '127.0.0.2', serial: '000123456', firmware: '2.40', clockOffsetS: 600, rtspUrl: 'rtsp://127.0.0.2:8554/main' });
  t.teardown(() => sim.close());
  const ours = await new OnvifDevice({ xaddr: sim.xaddr, clock: systemClock, credentials: { username: 'admin', password: 'admin' } }).describe();

  const cam = await agshConnect({ hostname: '127.0.0.2', port: sim.port, username: 'admin', password: 'admin' });
  const info = await once<Record<string, unknown>>((cb) => cam.getDeviceInformation(cb));
  const token = ours.profile.token;
  t.ok(cam.profiles?.some((p) => p.$.token === token), `agsh lists our chosen profile ${token}`);
  const stream = await once<{ uri: string }>((cb) => cam.getStreamUri({ protocol: 'RTSP', profileToken: token }, cb));
  const snapshot = await once<{ uri: string }>((cb) => cam.getSnapshotUri({ profileToken: token }, cb));

  t.equal(ours.manufacturer, info.manufacturer);
  t.equal(ours.model, info.model);
  t.equal(ours.streamUri, stream.uri);
  t.equal(ours.snapshotUri, snapshot.uri);
  t.equal(ours.serial, '000123456');
  t.equal(info.serialNumber, '000123456', 'a leading zero keeps agsh from parsing it');
  t.equal(ours.firmware, '2.40');
  t.equal(info.firmwareVersion, 2.4, 'agsh: a number');
  t.ok(Math.abs(ours.clockOffsetMs - 600_000) < 5_000, 'both got through a clock 10 minutes off');
});

t.test('a wrong password: ours says ONVIF_AUTH_FAILED; agsh connects with no profiles', async (t) => {
  const sim = await startOnvifSim({ bind: '127.0.0.2', password: 'right' });
  t.teardown(() => sim.close());
  await t.rejects(new OnvifDevice({ xaddr: sim.xaddr, clock: systemClock, credentials: { username: 'admin', password: 'wrong' } }).describe(), { code: 'ONVIF_AUTH_FAILED' });
  const cam = await agshConnect({ hostname: '127.0.0.2', port: sim.port, username: 'admin', password: 'wrong' });
  t.same(cam.profiles ?? [], [], "agsh's connect succeeds with zero profiles");
});
