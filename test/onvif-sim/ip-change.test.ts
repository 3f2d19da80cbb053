// The camera that changes IP overnight, on a private netns LAN: the simulator bound to the
// wildcard announces itself (Hello), notices its new address, announces again with the new
// XAddrs and a higher MetadataVersion, answers probes and SOAP there, and says Bye when it
// stops. Also checks the netns helper's promise: after close, our namespaces are gone.
import t from 'tap';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnOnvifSim } from '../../tools/onvif-sim/spawn.ts';
import { createLan, namespaces, netnsSkipReason } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';
import { runClient } from './fixtures/run-client.js';

const LISTENER = fileURLToPath(new URL('./fixtures/hello-listener.ts', import.meta.url));
const skip = await netnsSkipReason();

interface Announcement {
  kind: 'Hello' | 'Bye';
  from: string;
  xaddrs: string | null;
  endpoint: string | null;
  metadataVersion: string | null;
}

t.test('a camera that changes its address announces the new XAddrs', { skip: skip ?? false }, async (t) => {
  const lan = await createLan(t, { hosts: ['cam', 'client'], key: import.meta.url });
  const [cam, client] = [lan.host('cam'), lan.host('client')];
  const oldAddr = cam.address;
  const newAddr = `10.77.${lan.subnet}.77`;

  const listener = lan.spawn('client', process.execPath, ['--experimental-strip-types', '--no-warnings', LISTENER, JSON.stringify({ iface: client.address })]);
  const lines = createInterface({ input: listener.stdout! });
  const [first] = (await once(lines, 'line')) as [string];
  t.equal(first, 'listening');
  const report = new Promise<string>((resolve) => lines.once('line', resolve));

  const sim = await spawnOnvifSim({ bind: '0.0.0.0', port: 80, discoveryIfaceAddress: oldAddr, verbose: true }, { prefix: lan.prefix('cam') });
  t.equal(sim.xaddr, `http://${oldAddr}:80/onvif/device_service`, 'ready with the address it has now');

  await lan.setAddress('cam', newAddr);
  t.equal(cam.address, newAddr, 'the helper tracks the new address');
  await waitFor(() => sim.stderr().includes(`address changed ${oldAddr} -> ${newAddr}`), 5_000, 'the simulator noticed');

  const probe = await runClient<{ answers: { from: string; xaddrs: string | null }[] }>(lan, 'client', 'raw-probe.ts', { probes: [{ types: 'dn:NetworkVideoTransmitter' }], windowMs: 500 });
  t.same(probe.answers.map((a) => [a.from, a.xaddrs]), [[newAddr, `http://${newAddr}:80/onvif/device_service`]], 'probes are answered from and with the new address');
  const body = '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>';
  const post = `fetch(${JSON.stringify(`http://${newAddr}/onvif/device_service`)}, { method: 'POST', body: ${JSON.stringify(body)} }).then((r) => r.text()).then((x) => process.stdout.write(x))`;
  const soap = await lan.exec('client', process.execPath, ['-e', post]);
  t.match(soap.stdout, 'GetSystemDateAndTimeResponse', 'SOAP at the new address');

  t.equal(await sim.stop(), 0, 'stopped');
  listener.kill('SIGTERM');
  const { seen } = JSON.parse(await report) as { seen: Announcement[] };
  t.same(
    seen.map((a) => [a.kind, a.from, a.xaddrs, a.metadataVersion]),
    [
      ['Hello', oldAddr, `http://${oldAddr}:80/onvif/device_service`, '1'],
      ['Hello', newAddr, `http://${newAddr}:80/onvif/device_service`, '2'],
      ['Bye', newAddr, null, null],
    ],
    'Hello, Hello with the new XAddrs and MetadataVersion 2, Bye',
  );
  t.ok(seen.every((a) => a.endpoint === seen[0]?.endpoint), 'one EndpointReference throughout: the camera is the same one');

  const ours = [lan.lanNs, cam.ns, client.ns];
  await lan.close();
  const left = await namespaces();
  t.same(ours.filter((ns) => left.includes(ns)), [], 'after close, none of our namespaces is left');
});
