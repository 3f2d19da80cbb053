// Proof against futomi's `node-onvif` 0.1.7, an independent ONVIF client, inside a private
// LAN of network namespaces: startProbe() finds the simulator (node-onvif insists on XAddrs
// and scopes in the ProbeMatch), init() reads device information, profiles, stream and
// snapshot URIs (correcting for a camera clock 10 minutes slow), and fetchSnapshot() gets the
// JPEG through HTTP Digest. A wrong password fails init().
import t from 'tap';
import { spawnOnvifSim } from '../../tools/onvif-sim/spawn.ts';
import { createLan, netnsSkipReason } from '../helpers/netns.js';
import { runClient } from './fixtures/run-client.js';

const skip = await netnsSkipReason();

interface Read {
  xaddr: string;
  init: string;
  information?: Record<string, unknown>;
  timeDiffS?: number;
  profiles?: { token: string; name: string; rtsp: string; snapshot: string; resolution?: { width: number; height: number } }[];
  snapshot?: { contentType?: string; bytes?: number; magic?: string; err?: string };
}

interface Result {
  found: { urn: string; name: string; hardware: string; xaddrs: string[]; scopes: string[] }[];
  probeMs: number;
  reads: Read[];
}

t.test('node-onvif: startProbe, init, stream and snapshot URIs, fetchSnapshot with Digest, wrong password', { skip: skip ?? false }, async (t) => {
  const lan = await createLan(t, { hosts: ['cam', 'client'], key: import.meta.url });
  const cam = lan.host('cam');
  const sim = await spawnOnvifSim(
    { bind: cam.address, port: 80, discoveryIfaceAddress: cam.address, rtspUrl: `rtsp://${cam.address}:554/live/main`, subRtspUrl: `rtsp://${cam.address}:554/live/sub`, password: 'Secr3t!', clockOffsetS: -600, verbose: true },
    { prefix: lan.prefix('cam') },
  );
  t.teardown(() => sim.stop());

  const r = await runClient<Result>(lan, 'client', 'node-onvif.ts', {
    probe: true,
    reads: [
      { xaddr: sim.xaddr, user: 'admin', pass: 'Secr3t!' },
      { xaddr: sim.xaddr, user: 'admin', pass: 'nope' },
    ],
  });

  t.equal(r.found.length, 1, `one camera found (probe window ${r.probeMs} ms)`);
  const f = r.found[0]!;
  t.same(f.xaddrs, [sim.xaddr], 'XAddrs');
  t.equal(f.name, 'Vigil%20Sim%20Camera', 'name scope, as node-onvif reads it (it decodes "_", not %20)');
  t.equal(f.hardware, 'SIM-IPC-2040', 'hardware scope is the model');
  t.match(f.urn, /^urn:uuid:/);

  const [good, wrong] = r.reads;
  t.equal(good?.init, 'ok', 'init() with the right password');
  t.same(good?.information, { Manufacturer: 'Vigil Simulated Cameras', Model: 'SIM-IPC-2040', FirmwareVersion: '2.40', SerialNumber: '000123456', HardwareId: '1.0' }, 'node-onvif keeps every value a string');
  t.ok(Math.abs((good?.timeDiffS ?? 0) + 600) <= 2, `node-onvif measured the camera clock ${good?.timeDiffS} s off`);
  t.same(
    good?.profiles?.map((p) => [p.token, p.rtsp, p.snapshot, p.resolution?.width]),
    [
      ['Profile_1', `rtsp://${cam.address}:554/live/main`, `http://${cam.address}:80/onvif/snapshot?profile=Profile_1`, 1920],
      ['Profile_2', `rtsp://${cam.address}:554/live/sub`, `http://${cam.address}:80/onvif/snapshot?profile=Profile_2`, 640],
    ],
    'profiles with their stream and snapshot URIs',
  );
  t.same(good?.snapshot, { contentType: 'image/jpeg', bytes: good?.snapshot?.bytes, magic: 'ffd8' }, 'fetchSnapshot: a JPEG through HTTP Digest');
  t.ok((good?.snapshot?.bytes ?? 0) > 1000, 'a real picture');

  t.match(wrong?.init, /^Failed to initialize the device: Error: 400 Bad Request - Sender not Authorized/, 'a wrong password fails init() with ter:NotAuthorized (HTTP 400)');
  t.match(sim.stderr(), /snapshot -> unauthorized:\w+\n.*snapshot -> jpeg\n/, 'the snapshot was refused without Digest, then served with it');
});
