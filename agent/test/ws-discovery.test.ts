// WS-Discovery: parsing ProbeMatches (fixtures: a camera, an NVR, Debian's wsdd, a printer) and
// the probe and sweep against UDP responders on loopback (no multicast leaves this process's
// host: the probes are sent to 127.0.0.x).
import t, { type Test } from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import {
  buildProbe,
  cidrHostCount,
  hostsOf,
  parseProbeMatches,
  pickXAddr,
  probeMulticast,
  scopeValue,
  sweepUnicast,
} from '../src/discovery/ws-discovery.js';
import { parseXml, child, textOf } from '../src/discovery/xml.js';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/onvif/${name}`, import.meta.url), 'utf8');

t.test('a camera ProbeMatch: endpoint, the XAddr on the answering address, scopes, instance id', async (t) => {
  const r = parseProbeMatches(fixture('probe-matches-camera.xml'), '192.168.1.64');
  t.equal(r.kind, 'matches');
  if (r.kind !== 'matches') return;
  t.equal(r.relatesTo, 'urn:uuid:11111111-2222-4333-8444-555555555555');
  t.equal(r.matches.length, 1);
  const m = r.matches[0]!;
  t.equal(m.endpoint, 'urn:uuid:4d454930-3130-3132-3033-001122aabbcc');
  t.equal(m.xaddr, 'http://192.168.1.64/onvif/device_service', 'the IPv4 address that answered, not the link-local IPv6 one');
  t.equal(m.xaddrs.length, 2);
  t.equal(m.metadataVersion, '10');
  t.equal(m.instanceId, '1732370000', 'a string, as sent');
  t.equal(scopeValue(m.scopes, 'name'), 'Front door');
  t.equal(scopeValue(m.scopes, 'hardware'), 'DS-2CD2043G0-I');
  t.equal(scopeValue(m.scopes, 'mac'), null);
});

t.test("Debian's wsdd (wsdp:Device, no XAddrs) and a printer are not cameras", async (t) => {
  const wsdd = parseProbeMatches(fixture('probe-matches-wsdd.xml'), '192.168.1.2');
  t.equal(wsdd.kind, 'matches');
  if (wsdd.kind === 'matches') {
    t.same(wsdd.matches, []);
    t.match(wsdd.ignored[0]!.reason, /not a camera/);
  }
  const printer = parseProbeMatches(fixture('probe-matches-printer.xml'), '192.168.1.20');
  t.ok(printer.kind === 'matches' && printer.matches.length === 0 && /not a camera/.test(printer.ignored[0]!.reason));
});

t.test('an NVR answers for several cameras; a wrong namespace on dn: is tolerated; rtsp-only XAddrs are not usable', async (t) => {
  const r = parseProbeMatches(fixture('probe-matches-nvr.xml'), '10.0.0.11');
  if (r.kind !== 'matches') return t.fail('not parsed');
  t.same(
    r.matches.map((m) => m.xaddr),
    ['http://10.0.0.11:8000/onvif/device_service', 'http://10.0.0.12:8000/onvif/device_service'],
  );
  t.equal(r.relatesTo, null);
  t.match(r.ignored, [{ endpoint: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000003', reason: /no usable XAddrs/ }]);
});

t.test('junk, a Probe and a non-envelope are ignored with a reason', async (t) => {
  t.match(parseProbeMatches('not xml <', '1.2.3.4'), { kind: 'ignored', reason: /XML/ });
  t.match(parseProbeMatches(fixture('probe.xml'), '1.2.3.4'), { kind: 'ignored', reason: /not ProbeMatches/ });
  t.match(parseProbeMatches('<html><body/></html>', '1.2.3.4'), { kind: 'ignored', reason: /not a SOAP Envelope/ });
});

t.test('the Probe we send is well-formed and asks for NetworkVideoTransmitter', async (t) => {
  const env = parseXml(buildProbe('urn:uuid:x'));
  t.equal(textOf(child(child(env, 'Header'), 'MessageID')), 'urn:uuid:x');
  t.equal(textOf(child(child(child(env, 'Body'), 'Probe'), 'Types')), 'dn:NetworkVideoTransmitter');
});

t.test('XAddr choice and subnet arithmetic', async (t) => {
  t.equal(pickXAddr(['http://[fe80::1]/d', 'http://10.0.0.9/d'], '10.0.0.8'), 'http://10.0.0.9/d', 'IPv4 before IPv6');
  t.equal(pickXAddr(['rtsp://10.0.0.9/', 'garbage'], '10.0.0.9'), null);
  t.equal(cidrHostCount('192.168.1.0/24'), 254);
  t.equal(cidrHostCount('10.0.0.5/32'), 1);
  t.same(hostsOf('192.168.1.77/30', 10), ['192.168.1.77', '192.168.1.78'], 'the network part of the address is masked');
  t.same(hostsOf('10.1.2.3/32', 1), ['10.1.2.3']);
  t.throws(() => hostsOf('10.0.0.0/16', 256), { code: 'SWEEP_TOO_LARGE' });
  t.throws(() => hostsOf('10.0.0.300/24', 256), { code: 'CIDR_INVALID' });
  t.throws(() => hostsOf('10.0.0.0/4', 256), { code: 'CIDR_INVALID' });
});

/** A UDP responder on 127.0.0.x that answers a Probe with `answers(messageId)` (each datagram sent). */
async function responder(t: Test, address: string, answers: (messageId: string) => string[], port = 0): Promise<{ port: number; probes: number; socket: Socket }> {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  socket.bind(port, address);
  await once(socket, 'listening');
  const state = { port: socket.address().port, probes: 0, socket };
  socket.on('message', (msg, rinfo) => {
    state.probes++;
    const id = /MessageID>([^<]+)</.exec(msg.toString())?.[1] ?? '';
    for (const a of answers(id)) socket.send(a, rinfo.port, rinfo.address);
  });
  t.teardown(() => socket.close());
  return state;
}

const cameraAnswer = (id: string, endpoint: string, xaddr: string): string =>
  fixture('probe-matches-camera.xml')
    .replace('urn:uuid:11111111-2222-4333-8444-555555555555', id)
    .replace('urn:uuid:4d454930-3130-3132-3033-001122aabbcc', endpoint)
    .replace(/<d:XAddrs>[^<]*</, `<d:XAddrs>${xaddr}<`);

t.test('probe: answers are collected for the wait, deduplicated, wsdd and strangers ignored', async (t) => {
  const r = await responder(t, '127.0.0.1', (id) => [
    cameraAnswer(id, 'urn:uuid:cam-1', 'http://127.0.0.1:8000/onvif/device_service'),
    cameraAnswer(id, 'urn:uuid:cam-1', 'http://127.0.0.1:8000/onvif/device_service'),
    // wsdd answers every probe twice, without XAddrs
    fixture('probe-matches-wsdd.xml').replace('urn:uuid:11111111-2222-4333-8444-555555555555', id),
    fixture('probe-matches-wsdd.xml').replace('urn:uuid:11111111-2222-4333-8444-555555555555', id),
    // an answer to somebody else's probe
    cameraAnswer('urn:uuid:not-ours', 'urn:uuid:cam-2', 'http://127.0.0.1:8001/onvif/device_service'),
  ]);
  const t0 = performance.now();
  const found = await probeMulticast({ waitMs: 400, target: { address: '127.0.0.1', port: r.port } });
  const took = performance.now() - t0;
  t.same(found.map((m) => m.endpoint), ['urn:uuid:cam-1']);
  t.equal(found[0]!.via, 'multicast');
  t.equal(r.probes, 2, 'the probe is sent twice (UDP is lossy)');
  t.ok(took >= 380 && took < 1500, `bounded wait (${Math.round(took)} ms)`);
});

t.test('probe: an abort ends the wait at once', async (t) => {
  const r = await responder(t, '127.0.0.1', () => []);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  const t0 = performance.now();
  t.same(await probeMulticast({ waitMs: 10_000, signal: ac.signal, target: { address: '127.0.0.1', port: r.port } }), []);
  t.ok(performance.now() - t0 < 1000);
});

t.test('probe: binding to an address this host does not have is a clear error', async (t) => {
  await t.rejects(probeMulticast({ waitMs: 100, interfaceAddress: '192.0.2.77', target: { address: '127.0.0.1', port: 9 } }), { code: 'DISCOVERY_SOCKET' });
});

t.test('sweep: each host of the subnet probed by unicast, bounded in hosts, concurrency and time', async (t) => {
  // Three cameras on 127.0.0.2-4 of 127.0.0.0/29 (six hosts), all on one port.
  const first = await responder(t, '127.0.0.2', (id) => [cameraAnswer(id, 'urn:uuid:s2', 'http://127.0.0.2/onvif/device_service')]);
  const port = first.port;
  await responder(t, '127.0.0.3', (id) => [cameraAnswer(id, 'urn:uuid:s3', 'http://127.0.0.3/onvif/device_service')], port);
  const slow = await responder(t, '127.0.0.4', () => [], port);
  const ac = new AbortController();
  const t0 = performance.now();
  const found = await sweepUnicast({ cidr: '127.0.0.0/29', maxHosts: 6, concurrency: 2, hostWaitMs: 300, timeoutMs: 5000, port, signal: ac.signal, skip: ['127.0.0.1'] });
  const took = performance.now() - t0;
  t.same(found.map((m) => m.endpoint).sort(), ['urn:uuid:s2', 'urn:uuid:s3']);
  t.ok(found.every((m) => m.via === 'unicast'));
  t.equal(slow.probes, 1, 'a silent host is probed once');
  // 5 hosts, 2 at a time, answered hosts return early: at most 3 rounds of 300 ms.
  t.ok(took < 1500, `took ${Math.round(took)} ms`);
  t.throws(() => hostsOf('127.0.0.0/24', 6), { code: 'SWEEP_TOO_LARGE' });
});

t.test('sweep: the total time bound ends a slow sweep', async (t) => {
  const r = await responder(t, '127.0.0.2', () => []);
  const t0 = performance.now();
  await sweepUnicast({ cidr: '127.0.0.0/24', maxHosts: 254, concurrency: 1, hostWaitMs: 200, timeoutMs: 500, port: r.port });
  const took = performance.now() - t0;
  t.ok(took >= 450 && took < 1200, `took ${Math.round(took)} ms`);
});

t.test('scope values are percent-decoded, nothing else', async (t) => {
  t.equal(scopeValue(['onvif://www.onvif.org/name/Cam_Front%2FBack'], 'name'), 'Cam_Front/Back');
  t.equal(scopeValue(['ONVIF://www.onvif.org/MAC/00:11:22:aa:bb:cc'], 'mac'), '00:11:22:aa:bb:cc');
  t.equal(scopeValue(['onvif://www.onvif.org/name/%E0%A4%A'], 'name'), '%E0%A4%A', 'a broken escape is kept as sent');
});
