// A foreign WS-Discovery responder on the LAN: Debian's wsdd (the Windows network-browsing
// daemon) next to the simulator. wsdd answers only wsdp:Device probes, twice (SOAP-over-UDP
// repetition), with no XAddrs; the simulator answers camera probes only, and ignores wsdd's
// Hello. A discovery that trusts any answer would take a Windows PC for a camera.
import t from 'tap';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { spawnOnvifSim } from '../../tools/onvif-sim/spawn.ts';
import { createLan, netnsSkipReason } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';
import { runClient } from './fixtures/run-client.js';

const WSDD = '/usr/sbin/wsdd';
const skip = (await netnsSkipReason()) ?? (existsSync(WSDD) ? null : 'wsdd is missing (Debian package wsdd; scripts/deps.sh installs it)');

interface Answer {
  from: string;
  probe: number;
  action: string;
  types: string | null;
  xaddrs: string | null;
  endpoint: string | null;
  messageId: string | null;
}

t.test('wsdd on the LAN: its answers are there and are not cameras; the simulator still answers', { skip: skip ?? false }, async (t) => {
  const lan = await createLan(t, { hosts: ['cam', 'win', 'client'], key: import.meta.url });
  const [cam, win] = [lan.host('cam'), lan.host('win')];
  const sim = await spawnOnvifSim({ bind: cam.address, port: 80, discoveryIfaceAddress: cam.address, verbose: true }, { prefix: lan.prefix('cam') });
  t.teardown(() => sim.stop());

  // No HTTP side (-t): only its discovery half matters here. It logs to stderr.
  const wsdd = lan.spawn('win', WSDD, ['-i', 'eth0', '-4', '-t', '-v', '-n', 'FRONT-DESK-PC']);
  let wsddLog = '';
  wsdd.stderr!.setEncoding('utf8').on('data', (d: string) => (wsddLog += d));
  t.teardown(async () => {
    if (wsdd.exitCode === null) {
      wsdd.kill('SIGTERM');
      await once(wsdd, 'close');
    }
  });
  await waitFor(() => /joined multicast group/.test(wsddLog), 10_000, 'wsdd joined 239.255.255.250');
  await waitFor(() => /discovery: Hello from [\d.]+:\d+ -> no match/.test(sim.stderr()), 5_000, "the simulator heard wsdd's Hello");

  const [raw, agsh] = await Promise.all([
    runClient<{ answers: Answer[] }>(lan, 'client', 'raw-probe.ts', {
      probes: [
        { types: 'wsdp:Device' }, // 0: what Windows (and wsdd) look for
        { types: 'dn:NetworkVideoTransmitter' }, // 1: what ONVIF clients look for
        { types: '' }, // 2: an empty probe
        { types: 'tds:Device', to: cam.address }, // 3: a subnet sweep's unicast probe
        { types: 'wsdp:Device dn:NetworkVideoTransmitter' }, // 4: nobody is both
      ],
    }),
    runClient<{ found: { hostname: string }[] }>(lan, 'client', 'agsh.ts', { probeMs: 1500 }),
  ]);
  const by = (probe: number, from: string) => raw.answers.filter((a) => a.probe === probe && a.from === from);

  const fromWsdd = by(0, win.address);
  t.equal(fromWsdd.length, 2, 'wsdd answers a wsdp:Device probe twice');
  t.equal(fromWsdd[0]?.messageId, fromWsdd[1]?.messageId, '…the same message repeated');
  t.match(fromWsdd[0], { action: 'ProbeMatches', types: 'wsdp:Device pub:Computer', xaddrs: null }, '…which is no camera: wrong types, no XAddrs');
  t.equal(by(0, cam.address).length, 0, 'the simulator does not answer wsdp:Device');

  const camAnswers = by(1, cam.address);
  t.equal(camAnswers.length, 1, 'the camera answers an ONVIF probe once');
  t.match(camAnswers[0], { types: 'dn:NetworkVideoTransmitter tds:Device', xaddrs: sim.xaddr, endpoint: /^urn:uuid:/ }, '…with its types, XAddrs and endpoint');
  t.equal(by(1, win.address).length, 0, 'wsdd does not answer an ONVIF probe');
  t.equal(by(2, cam.address).length, 1, 'the camera answers an empty probe');
  t.equal(by(2, win.address).length, 0, 'wsdd ignores an empty probe');
  t.equal(by(3, cam.address).length, 1, 'the camera answers a unicast probe (subnet sweep)');
  t.equal(raw.answers.filter((a) => a.probe === 4).length, 0, 'nobody answers a probe for both types');

  t.same(agsh.found.map((f) => f.hostname), [cam.address], 'agsh discovery in this LAN finds the camera only');
  t.match(wsddLog, new RegExp(`${lan.host('client').address.replace(/\./g, '\\.')}:\\d+\\(eth0\\) - - "Probe urn:uuid:`), 'wsdd logged the probes it saw');
});
