// Proof against agsh's `onvif` 0.8.3, an independent ONVIF client, inside a private LAN of
// network namespaces: it discovers the simulator by multicast and reads device information,
// profiles, stream and snapshot URIs with the right password — also from a camera whose clock
// is 10 minutes off (agsh measures the offset with GetSystemDateAndTime and shifts its
// WS-Security timestamps), and from one that answers twice and lists a foreign address first.
// The wrong password fails — in agsh's own way: connect "succeeds" with no profiles.
import t from 'tap';
import { spawnOnvifSim } from '../../tools/onvif-sim/spawn.ts';
import { createLan, netnsSkipReason } from '../helpers/netns.js';
import { runClient } from './fixtures/run-client.js';

const skip = await netnsSkipReason();

interface Read {
  host: string;
  connect: string;
  profiles?: string[];
  measuredOffsetS?: number;
  deviceInformation?: Record<string, unknown>;
  streamUri?: unknown;
  snapshotUri?: unknown;
}

interface AgshResult {
  found: { urn: string; hostname: string; port: number; xaddrs: string[]; from: string }[];
  errors?: string[];
  reads: Read[];
}

t.test('agsh onvif: discovery, device information, profiles, URIs, clock offset, wrong password', { skip: skip ?? false }, async (t) => {
  const lan = await createLan(t, { hosts: ['cam1', 'cam2', 'client'], key: import.meta.url });
  const [cam1, cam2] = [lan.host('cam1'), lan.host('cam2')];
  const ghost = `10.77.${lan.subnet}.250`; // nobody has it
  const sims = await Promise.all([
    spawnOnvifSim({ bind: cam1.address, port: 80, discoveryIfaceAddress: cam1.address, rtspUrl: `rtsp://${cam1.address}:8554/cam`, password: 'right' }, { prefix: lan.prefix('cam1') }),
    spawnOnvifSim(
      { bind: cam2.address, port: 8080, discoveryIfaceAddress: cam2.address, serial: '20240615', password: 'right', clockOffsetS: 600, answerTwice: true, extraXAddr: ghost },
      { prefix: lan.prefix('cam2') },
    ),
  ]);
  t.teardown(() => Promise.all(sims.map((s) => s.stop())));

  const r = await runClient<AgshResult>(lan, 'client', 'agsh.ts', {
    probeMs: 1500,
    reads: [
      { host: cam1.address, port: 80, username: 'admin', password: 'right' },
      { host: cam2.address, port: 8080, username: 'admin', password: 'right' },
      { host: cam1.address, port: 80, username: 'admin', password: 'wrong' },
    ],
  });

  const found = [...r.found].sort((a, b) => a.hostname.localeCompare(b.hostname));
  t.equal(found.length, 2, 'both cameras discovered once each (the repeated answer is not a third)');
  t.same(found.map((f) => f.hostname), [cam1.address, cam2.address], 'agsh picks the XAddr of the address that answered');
  t.same(found[1]?.xaddrs, [`http://${ghost}:8080/onvif/device_service`, `http://${cam2.address}:8080/onvif/device_service`], 'cam2 lists two XAddrs, the foreign one first');
  for (const f of found) t.match(f.urn, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'EndpointReference is a urn:uuid');

  const [good, skewed, wrong] = r.reads;
  t.equal(good?.connect, 'ok');
  t.same(good?.profiles, ['Profile_1', 'Profile_2'], 'two profiles');
  t.same(
    good?.deviceInformation,
    { manufacturer: 'Vigil Simulated Cameras', model: 'SIM-IPC-2040', firmwareVersion: 2.4, serialNumber: '000123456', hardwareId: 1 },
    'device information (agsh turns firmware "2.40" into 2.4 and hardware id "1.0" into 1; the leading zeros of the serial survive)',
  );
  t.equal(good?.streamUri, `rtsp://${cam1.address}:8554/cam`, 'stream URI is the configured RTSP URL');
  t.equal(good?.snapshotUri, `http://${cam1.address}:80/onvif/snapshot?profile=Profile_1`, 'snapshot URI is served by the simulator');
  t.ok(Math.abs(good?.measuredOffsetS ?? 99) <= 2, `agsh measured no clock offset on cam1 (${good?.measuredOffsetS} s: the clock is read to the second)`);

  t.equal(skewed?.connect, 'ok', 'camera 10 minutes ahead');
  t.ok(Math.abs((skewed?.measuredOffsetS ?? 0) - 600) <= 2, `agsh measured the offset (${skewed?.measuredOffsetS} s)`);
  t.same(skewed?.profiles, ['Profile_1', 'Profile_2'], 'profiles read with timestamps on the camera clock');
  t.equal(skewed?.deviceInformation?.serialNumber, 20240615, 'an all-digit serial becomes a number in agsh');

  t.equal(wrong?.connect, 'ok', 'wrong password: agsh still reports a connection…');
  t.same(wrong?.profiles, [], '…with no profiles (GetProfiles was refused)');
  t.match(wrong?.deviceInformation, { err: /Sender not Authorized/ }, 'GetDeviceInformation fails with ter:NotAuthorized');
  t.match(wrong?.streamUri, { err: /Sender not Authorized/ });
});
