// The simulator on its own, in-process on loopback (no namespaces, no root): its SOAP
// answers and faults, WS-UsernameToken judged on the camera's own clock, WS-Discovery matching
// by unicast probes, its options, and the program's contract (one "ready" line, SIGTERM → 0).
import t from 'tap';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import { startOnvifSim, type OnvifSim } from '../../tools/onvif-sim/sim.ts';
import { parseArgs, resolveOptions, toArgs, type OnvifSimOptions } from '../../tools/onvif-sim/options.ts';
import { spawnOnvifSim } from '../../tools/onvif-sim/spawn.ts';
import type { Teardown } from '../helpers/tmp.js';

const SOAP = 'http://www.w3.org/2003/05/soap-envelope';
const DIGEST = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest';
const TEXT = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText';

interface Token {
  user?: string;
  pass: string;
  /** Created, ms since the epoch (default: now on our clock). */
  createdMs?: number;
  text?: boolean;
}

function security(tok: Token): string {
  const created = new Date(tok.createdMs ?? Date.now()).toISOString();
  const nonce = randomBytes(16);
  const password = tok.text ? tok.pass : createHash('sha1').update(Buffer.concat([nonce, Buffer.from(created), Buffer.from(tok.pass)])).digest('base64');
  return (
    `<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">` +
    `<wsse:UsernameToken><wsse:Username>${tok.user ?? 'admin'}</wsse:Username><wsse:Password Type="${tok.text ? TEXT : DIGEST}">${password}</wsse:Password>` +
    `<wsse:Nonce>${nonce.toString('base64')}</wsse:Nonce><wsu:Created>${created}</wsu:Created></wsse:UsernameToken></wsse:Security>`
  );
}

async function soap(sim: OnvifSim, body: string, tok?: Token, path = '/onvif/device_service', envNs = SOAP): Promise<{ status: number; xml: string }> {
  const xml = `<?xml version="1.0"?><e:Envelope xmlns:e="${envNs}"><e:Header>${tok ? security(tok) : ''}</e:Header><e:Body>${body}</e:Body></e:Envelope>`;
  const res = await fetch(`http://${sim.address}:${sim.port}${path}`, { method: 'POST', headers: { 'content-type': 'application/soap+xml; charset=utf-8' }, body: xml });
  return { status: res.status, xml: await res.text() };
}

const tds = (op: string, inner = ''): string => `<${op} xmlns="http://www.onvif.org/ver10/device/wsdl">${inner}</${op}>`;
const trt = (op: string, inner = ''): string => `<m:${op} xmlns:m="http://www.onvif.org/ver10/media/wsdl">${inner}</m:${op}>`;
const subcode = (xml: string): string | undefined => /<s:Subcode><s:Value>ter:(\w+)</.exec(xml)?.[1];

async function sim(t: Teardown, o: OnvifSimOptions = {}): Promise<OnvifSim> {
  const s = await startOnvifSim(o);
  t.teardown(() => s.close());
  return s;
}

t.test('GetSystemDateAndTime needs no credentials and reports the camera clock, offset and all', async (t) => {
  const s = await sim(t, { clockOffsetS: 600 });
  const r = await soap(s, tds('GetSystemDateAndTime'));
  t.equal(r.status, 200);
  const [, h, mi, se, y, mo, d] = /<tt:Hour>(\d+)<\/tt:Hour><tt:Minute>(\d+)<\/tt:Minute><tt:Second>(\d+)<\/tt:Second><\/tt:Time><tt:Date><tt:Year>(\d+)<\/tt:Year><tt:Month>(\d+)<\/tt:Month><tt:Day>(\d+)/.exec(r.xml)!.map(Number);
  const camera = Date.UTC(y!, mo! - 1, d, h, mi, se);
  t.ok(Math.abs(camera - Date.now() - 600_000) < 2000, 'UTCDateTime is 10 minutes ahead');
  s.setClockOffset(-3600);
  const later = await soap(s, tds('GetSystemDateAndTime'));
  t.match(later.xml, `<tt:Hour>${new Date(Date.now() - 3600_000).getUTCHours()}</tt:Hour>`, 'setClockOffset moves it at once');
});

t.test('WS-UsernameToken: digest judged on the camera clock, within ±5 minutes', async (t) => {
  const s = await sim(t, { password: 'pw', clockOffsetS: 600 });
  const info = tds('GetDeviceInformation');
  const camNow = Date.now() + 600_000;

  const none = await soap(s, info);
  t.equal(none.status, 400, 'no token: HTTP 400 (the default)');
  t.equal(subcode(none.xml), 'NotAuthorized');
  t.match(none.xml, '<s:Value>s:Sender</s:Value>');

  const naive = await soap(s, info, { pass: 'pw' });
  t.equal(subcode(naive.xml), 'NotAuthorized', 'Created on the client clock, 10 minutes behind the camera: refused');

  const corrected = await soap(s, info, { pass: 'pw', createdMs: camNow });
  t.equal(corrected.status, 200, 'Created on the camera clock: accepted');
  t.match(corrected.xml, '<tds:FirmwareVersion>2.40</tds:FirmwareVersion><tds:SerialNumber>000123456</tds:SerialNumber>');

  t.equal((await soap(s, info, { pass: 'pw', createdMs: camNow - 240_000 })).status, 200, '4 minutes old: still fresh');
  t.equal(subcode((await soap(s, info, { pass: 'pw', createdMs: camNow + 360_000 })).xml), 'NotAuthorized', '6 minutes in the future: refused');
  t.equal(subcode((await soap(s, info, { pass: 'wrong', createdMs: camNow })).xml), 'NotAuthorized', 'wrong password');
  t.equal(subcode((await soap(s, info, { user: 'root', pass: 'pw', createdMs: camNow })).xml), 'NotAuthorized', 'unknown user');
  t.equal(subcode((await soap(s, info, { pass: 'pw', text: true })).xml), 'NotAuthorized', 'PasswordText refused unless enabled');

  t.equal((await soap(s, tds('GetCapabilities', '<Category>All</Category>'))).status, 200, 'GetCapabilities is PRE_AUTH, as on most cameras');
  t.equal(subcode((await soap(s, trt('GetProfiles'), undefined, '/onvif/media_service')).xml), 'NotAuthorized', 'media needs a token');
  t.same(
    s.requests.map((r) => r.outcome).slice(0, 8),
    ['unauthorized:missing', 'unauthorized:stale', 'ok', 'ok', 'unauthorized:stale', 'unauthorized:bad-digest', 'unauthorized:unknown-user', 'unauthorized:text-refused'],
    'the simulator says why it refused',
  );
});

t.test('options: PasswordText accepted when enabled; auth faults as HTTP 401', async (t) => {
  const s = await sim(t, { password: 'pw', passwordText: true, authFaultStatus: 401 });
  t.equal((await soap(s, tds('GetDeviceInformation'), { pass: 'pw', text: true })).status, 200, 'PasswordText with passwordText');
  const bad = await soap(s, tds('GetDeviceInformation'), { pass: 'nope', text: true });
  t.equal(bad.status, 401, 'authFaultStatus 401');
  t.equal(subcode(bad.xml), 'NotAuthorized');
});

t.test('device and media answers, faults for what a camera would refuse', async (t) => {
  const s = await sim(t, { profiles: 1, rtspUrl: 'rtsp://10.0.0.9:554/ch1', snapshot: 'none', mac: 'AA:BB:CC:00:11:22' });
  const tok = { pass: 'admin' };
  const media = (op: string, inner = '') => soap(s, trt(op, inner), tok, '/onvif/media_service');

  const caps = await soap(s, tds('GetCapabilities', '<Category>All</Category>'));
  t.match(caps.xml, `<tt:Media><tt:XAddr>http://127.0.0.1:${s.port}/onvif/media_service</tt:XAddr>`, 'GetCapabilities names the media service');
  const services = await soap(s, tds('GetServices', '<IncludeCapability>false</IncludeCapability>'));
  t.match(services.xml, `<tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace><tds:XAddr>http://127.0.0.1:${s.port}/onvif/media_service</tds:XAddr>`, 'GetServices too');
  t.match((await soap(s, tds('GetNetworkInterfaces'), tok)).xml, '<tt:HwAddress>aa:bb:cc:00:11:22</tt:HwAddress>', 'the MAC, lower case');
  t.match((await soap(s, tds('GetScopes'), tok)).xml, '<tt:ScopeItem>onvif://www.onvif.org/name/Vigil%20Sim%20Camera</tt:ScopeItem>', 'GetScopes');

  const profiles = await media('GetProfiles');
  t.equal(profiles.xml.match(/<trt:Profiles /g)?.length, 1, 'profiles: 1');
  t.match((await media('GetStreamUri', '<m:ProfileToken>Profile_1</m:ProfileToken>')).xml, '<tt:Uri>rtsp://10.0.0.9:554/ch1</tt:Uri>', 'GetStreamUri: the configured URL');
  t.same(subcode((await media('GetStreamUri', '<m:ProfileToken>Profile_9</m:ProfileToken>')).xml), 'InvalidArgVal', 'an unknown profile token');
  t.match((await media('GetStreamUri', '<m:ProfileToken>Profile_9</m:ProfileToken>')).xml, 'ter:NoProfile');
  const snap = await media('GetSnapshotUri', '<m:ProfileToken>Profile_1</m:ProfileToken>');
  t.equal(snap.status, 500, 'snapshot none: GetSnapshotUri is not supported…');
  t.equal(subcode(snap.xml), 'ActionNotSupported');

  t.equal(subcode((await soap(s, tds('SetSystemFactoryDefault'), tok)).xml), 'ActionNotSupported', 'an operation it lacks');
  t.equal(subcode((await soap(s, trt('GetProfiles'), tok)).xml), 'ActionNotSupported', 'a media operation sent to the device service');
  t.equal(subcode((await soap(s, tds('GetSystemDateAndTime'), undefined, '/onvif/device_service', 'http://schemas.xmlsoap.org/soap/envelope/')).xml), 'VersionMismatch', 'SOAP 1.1');
  const broken = await fetch(`http://127.0.0.1:${s.port}/onvif/device_service`, { method: 'POST', body: '<s:Envelope xmlns:s="x"><s:Body>' });
  t.equal(broken.status, 400, 'malformed XML: 400…');
  t.equal(subcode(await broken.text()), 'WellFormed');
  const doctype = await fetch(`http://127.0.0.1:${s.port}/onvif/device_service`, { method: 'POST', body: `<!DOCTYPE x [<!ENTITY a "b">]><s:Envelope xmlns:s="${SOAP}"><s:Body/></s:Envelope>` });
  t.equal(subcode(await doctype.text()), 'WellFormed', 'DOCTYPE refused');
  t.equal((await fetch(`http://127.0.0.1:${s.port}/onvif/device_service`)).status, 405, 'GET on a SOAP endpoint');
  t.equal((await fetch(`http://127.0.0.1:${s.port}/index.html`)).status, 404);
});

interface Answer {
  xml: string;
  atMs: number;
}

/** Sends one probe; collects answers until `enough` came or the window closed. */
async function probe(s: OnvifSim, types: string | null, extra = '', windowMs = 150, enough = 1): Promise<Answer[]> {
  const sock = dgram.createSocket('udp4');
  const got: Answer[] = [];
  const t0 = Date.now();
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  sock.on('message', (m) => {
    got.push({ xml: m.toString(), atMs: Date.now() - t0 });
    if (got.length >= enough) done();
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const body = extra || `<d:Probe>${types === null ? '' : `<d:Types>${types}</d:Types>`}</d:Probe>`;
  const msg =
    `<s:Envelope xmlns:s="${SOAP}" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof">` +
    `<s:Header><a:MessageID>urn:uuid:${randomUUID()}</a:MessageID><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action></s:Header><s:Body>${body}</s:Body></s:Envelope>`;
  sock.send(msg, s.discovery!.port, '127.0.0.1');
  const timer = setTimeout(done, windowMs);
  await finished;
  clearTimeout(timer);
  sock.close();
  return got;
}

t.test('WS-Discovery: which probes the camera answers (unicast on loopback)', async (t) => {
  const s = await sim(t, { discoveryIfaceAddress: '127.0.0.1', discoveryPort: 0 });
  t.equal(s.discovery?.address, '127.0.0.1', 'on loopback it listens on that address only (unicast)');
  const cases: [string | null, number][] = [
    ['dn:NetworkVideoTransmitter', 1],
    ['tds:Device', 1],
    ['dn:NetworkVideoTransmitter tds:Device', 1],
    [null, 1],
    ['', 1],
    ['wsdp:Device', 0],
    ['dn:Device', 0],
    ['wsdp:Device dn:NetworkVideoTransmitter', 0],
    ['undeclared:NetworkVideoTransmitter', 1],
  ];
  for (const [types, n] of cases) t.equal((await probe(s, types)).length, n, `Types ${JSON.stringify(types)}: ${n ? 'answered' : 'silent'}`);
  const scoped = (scopes: string, matchBy = '') => probe(s, null, `<d:Probe><d:Scopes${matchBy ? ` MatchBy="${matchBy}"` : ''}>${scopes}</d:Scopes></d:Probe>`);
  t.equal((await scoped('onvif://www.onvif.org/name')).length, 1, 'a scope prefix matches');
  t.equal((await scoped('onvif://www.onvif.org/hardware/SIM-IPC-2040')).length, 1, 'its hardware scope');
  t.equal((await scoped('onvif://www.onvif.org/name/Other')).length, 0, 'another name does not');
  t.equal((await scoped('onvif://www.onvif.org/nam')).length, 0, 'prefixes go by whole path segments');
  t.equal((await scoped('onvif://www.onvif.org/name', 'http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0')).length, 0, 'strcmp0 wants the exact scope');

  const [answer] = await probe(s, 'dn:NetworkVideoTransmitter');
  t.match(answer?.xml, `<d:XAddrs>${s.xaddr}</d:XAddrs>`, 'XAddrs');
  t.match(answer?.xml, `<a:EndpointReference><a:Address>${s.endpoint}</a:Address></a:EndpointReference>`, 'EndpointReference');
  t.match(answer?.xml, /<a:RelatesTo>urn:uuid:[0-9a-f-]+<\/a:RelatesTo>/, 'RelatesTo the probe');
  t.match(answer?.xml, /<d:MetadataVersion>1<\/d:MetadataVersion>/);
  const resolve = await probe(s, null, `<d:Resolve><a:EndpointReference><a:Address>${s.endpoint}</a:Address></a:EndpointReference></d:Resolve>`);
  t.match(resolve[0]?.xml, '<d:ResolveMatches><d:ResolveMatch>', 'Resolve by endpoint');
  t.equal(s.probesAnswered(), 10, 'probes answered, counted');
});

t.test('WS-Discovery quirks: answer twice, late, with a second XAddr listed first', async (t) => {
  const s = await sim(t, { discoveryIfaceAddress: '127.0.0.1', discoveryPort: 0, answerTwice: true, answerDelayMs: 200, extraXAddr: '192.0.2.7' });
  const got = await probe(s, 'dn:NetworkVideoTransmitter', '', 1000, 2);
  t.equal(got.length, 2, 'two answers');
  t.ok(got[0]!.atMs >= 190, `the first after the delay (${got[0]!.atMs} ms)`);
  const id = (a: Answer): string | undefined => /<a:MessageID>([^<]+)</.exec(a.xml)?.[1];
  t.equal(id(got[0]!), id(got[1]!), 'the same message repeated (SOAP-over-UDP repetition)');
  t.match(got[0]!.xml, `<d:XAddrs>http://192.0.2.7:${s.port}/onvif/device_service ${s.xaddr}</d:XAddrs>`, 'two XAddrs, the foreign one first');
});

t.test('options: defaults, validation naming the option, command line both ways', async (t) => {
  const d = resolveOptions();
  t.match(d, { bind: '127.0.0.1', port: 0, serial: '000123456', firmware: '2.40', username: 'admin', snapshot: 'jpeg', authFaultStatus: 400, profiles: 2, authWindowS: 300 });
  t.match(d.mac, /^02:56(:[0-9a-f]{2}){4}$/, 'MAC derived from the serial');
  t.throws(() => resolveOptions({ bind: 'localhost' }), /option bind/);
  t.throws(() => resolveOptions({ authFaultStatus: 403 as 400 }), /option authFaultStatus/);
  t.throws(() => resolveOptions({ rtspUrl: 'http://x' }), /option rtspUrl/);
  t.throws(() => parseArgs(['--snapshot']), /--snapshot needs a value/);
  t.throws(() => parseArgs(['--port', 'eighty']), /--port expects an integer/);
  t.throws(() => parseArgs(['--colour', 'red']), /unknown option --colour/);
  const o: OnvifSimOptions = { bind: '10.1.2.3', port: 80, serial: '0042', passwordText: true, hello: false, clockOffsetS: -90.5, snapshot: 'html', authFaultStatus: 401, answerTwice: true };
  t.same(parseArgs(toArgs(o)), o, 'toArgs and parseArgs agree');
  t.same(parseArgs(['--port=8080', '--password-text']), { port: 8080, passwordText: true }, '--flag=value');
});

t.test('the program: one "ready" line, SIGTERM exits 0, a bad option exits 2', async (t) => {
  const p = await spawnOnvifSim({ serial: '0099' });
  t.match(p.xaddr, /^http:\/\/127\.0\.0\.1:\d+\/onvif\/device_service$/);
  let more = '';
  p.child.stdout!.on('data', (d: Buffer) => (more += d.toString()));
  const res = await fetch(p.xaddr, { method: 'POST', body: `<s:Envelope xmlns:s="${SOAP}"><s:Body>${tds('GetSystemDateAndTime')}</s:Body></s:Envelope>` });
  t.equal(res.status, 200, 'it serves');
  t.equal(await p.stop(), 0, 'SIGTERM: exit 0');
  t.equal(more, '', 'nothing on stdout after the ready line');

  const bad = await spawnOnvifSim({ snapshot: 'gif' as 'jpeg' }).catch((e: Error) => e);
  t.match(bad, { message: /exited \(2\) before it was ready.*option snapshot/s }, 'bad option: exit 2, naming it');
});
