// Proof against libonvif's `onvif-util` 1.4.4 (Debian package onvif-tools), an independent
// ONVIF client written in C, inside a private LAN of network namespaces. onvif-util finds a
// camera only by WS-Discovery (it multicasts a probe and reads answers until 500 ms of
// silence), reads every HTTP reply by its Content-Length and corrects its timestamps by the
// camera's clock offset. It reads the name from the discovery scopes, the serial from
// GetDeviceInformation, and everything else from the commands it is typed.
import t from 'tap';
import { existsSync } from 'node:fs';
import { macForSerial } from '../../tools/onvif-sim/options.ts';
import { spawnOnvifSim } from '../../tools/onvif-sim/spawn.ts';
import { createLan, netnsSkipReason } from '../helpers/netns.js';

const ONVIF_UTIL = '/usr/bin/onvif-util';
const skip = (await netnsSkipReason()) ?? (existsSync(ONVIF_UTIL) ? null : 'onvif-util is missing (Debian package onvif-tools; scripts/deps.sh installs it)');
// onvif-util loops forever on an empty stdin when no camera answered: always end with quit,
// and never wait on it for long.
const RUN_TIMEOUT_MS = 15_000;

t.test('onvif-util: discovery, login, stream URI, profiles, clock offset, dump; wrong password', { skip: skip ?? false }, async (t) => {
  const lan = await createLan(t, { hosts: ['cam', 'client'], key: import.meta.url });
  const cam = lan.host('cam');
  const sim = await spawnOnvifSim(
    { bind: cam.address, port: 8000, discoveryIfaceAddress: cam.address, rtspUrl: `rtsp://${cam.address}:8554/cam`, password: 'pw', clockOffsetS: 600 },
    { prefix: lan.prefix('cam') },
  );
  t.teardown(() => sim.stop());

  const session = (password: string, commands: string[]) =>
    lan.exec('client', ONVIF_UTIL, ['-u', 'admin', '-p', password, cam.address], { input: [...commands, 'quit', ''].join('\n'), timeoutMs: RUN_TIMEOUT_MS });
  const [good, wrong, all] = await Promise.all([
    session('pw', ['get rtsp', 'get profiles', 'get profile 1', 'get time', 'get network', 'dump']),
    session('not-pw', ['get rtsp']),
    lan.exec('client', ONVIF_UTIL, ['-a'], { timeoutMs: RUN_TIMEOUT_MS }),
  ]);

  const out = good.stdout;
  t.equal(good.code, 0, 'the session ends with quit');
  t.match(out, `found host: ${cam.address}\n`, 'discovered by multicast');
  t.match(out, 'successfully connected to host', 'GetDeviceInformation accepted its WS-Security digest');
  t.match(out, 'name:   Vigil Sim Camera SIM-IPC-2040\n', 'name and hardware (model) from the scopes, %20 decoded');
  t.match(out, 'serial: 000123456\n', 'serial kept as text, leading zeros and all');
  t.match(out, `  rtsp://${cam.address}:8554/cam\n`, 'get rtsp: the configured stream URI');
  t.match(out, '  Token 0: Profile_1\n  Token 1: Profile_2\n', 'get profiles');
  t.match(out, /Profile set to Profile_2\n\n {2}Width: {6}640\n {2}Height: {5}360\n {2}Frame Rate: 15\n/, 'get profile 1: the sub stream');
  const offset = Number(/Time Offset: (-?\d+) seconds/.exec(out)?.[1]);
  t.ok(Math.abs(offset - 600) <= 2, `get time: onvif-util measured the camera clock ${offset} s ahead`);
  t.match(out, `  IP Address: ${cam.address}\n`, 'get network: GetNetworkInterfaces');
  t.match(out, `NetworkInterfaces.Info.HwAddress=${macForSerial('000123456')}\n`, 'dump: GetNetworkInterfaces, the MAC address');
  t.match(out, 'Manufacturer=Vigil Simulated Cameras\nModel=SIM-IPC-2040\nFirmwareVersion=2.40\nSerialNumber=000123456\n', 'dump: GetDeviceInformation, maker, model, firmware and serial as text');

  t.equal(wrong.code, 1, 'wrong password: onvif-util gives up');
  t.match(wrong.stdout, 'ERROR: get device information - ter:NotAuthorized', 'with the ter:NotAuthorized subcode');

  t.match(all.stdout, 'Found 1 cameras\n', 'onvif-util -a: one camera');
  t.match(all.stdout, `${cam.address} simcam-000123456(Vigil Sim Camera SIM-IPC-2040)\n`, 'with its GetHostname name');
});
