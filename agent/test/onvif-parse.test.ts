// Parsing of ONVIF SOAP answers, with fixtures from the shapes real cameras send, and the
// quirks of agsh's onvif 0.8.3 that made us write our own parsing (shown on the same fixtures).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  chooseProfile,
  isAuthFault,
  parseDeviceInformation,
  parseMediaUri,
  parseMediaXAddr,
  parseNetworkInterfaces,
  parseProfiles,
  parseSoap,
  parseSystemDateAndTime,
  posixTzOffsetMs,
  primaryMac,
} from '../src/discovery/onvif-parse.js';
import { normalizeMac } from '../src/cameras/camera-key.js';
import { envelope, passwordDigest, securityHeader, wsuTime } from '../src/discovery/onvif-soap.js';
import { onDeviceHost, withoutCredentials } from '../src/discovery/onvif-device.js';
import { parseXml, path, textOf } from '../src/discovery/xml.js';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/onvif/${name}`, import.meta.url), 'utf8');
const body = (name: string) => parseSoap(fixture(name), name).body;

t.test('device information stays strings: serial with leading zeros, firmware "2.40", hardware id "1.0"', async (t) => {
  t.same(parseDeviceInformation(body('device-information.xml')), {
    manufacturer: 'HIKVISION',
    model: 'DS-2CD2043G0-I',
    firmwareVersion: '2.40',
    serialNumber: '0012345678',
    hardwareId: '1.0',
  });
  t.equal(parseDeviceInformation(body('device-information-numeric.xml')).serialNumber, '12345678901234567890');
  t.same(parseDeviceInformation(body('device-information-sparse.xml')), {
    manufacturer: 'Generic',
    model: null,
    firmwareVersion: 'V5.5.0 build 180122',
    serialNumber: null,
    hardwareId: null,
  });
});

t.test("agsh's onvif 0.8.3 turns the same answer into numbers (the quirk we avoid)", async (t) => {
  const require = createRequire(import.meta.url);
  const { parseSOAPString, linerase } = require('onvif/lib/utils.js') as {
    parseSOAPString: (xml: string, cb: (err: Error | null, data: unknown[]) => void, status: number) => void;
    linerase: (x: unknown) => { getDeviceInformationResponse: Record<string, unknown> };
  };
  const data = await new Promise<unknown[]>((resolve, reject) => parseSOAPString(fixture('device-information-numeric.xml'), (err, d) => (err ? reject(err) : resolve(d)), 200));
  const info = linerase(data[0]).getDeviceInformationResponse;
  t.equal(typeof info.serialNumber, 'number');
  t.not(String(info.serialNumber), '12345678901234567890', 'a long numeric serial loses digits as a double');
  t.equal(info.firmwareVersion, 2.4, '"2.40" became 2.4');
  t.equal(info.hardwareId, 1, '"1.0" became 1');
});

t.test('network interfaces: the MAC of the first enabled interface, normalised', async (t) => {
  const ifaces = parseNetworkInterfaces(body('network-interfaces.xml'));
  t.same(ifaces, [
    { token: 'eth1', name: 'eth1', enabled: false, mac: null },
    { token: 'eth0', name: 'eth0', enabled: true, mac: '00:11:22:aa:bb:cc' },
  ]);
  t.equal(primaryMac(ifaces), '00:11:22:aa:bb:cc');
  t.equal(primaryMac([]), null);
  for (const [input, want] of [
    ['001122AABBCC', '00:11:22:aa:bb:cc'],
    ['00.11.22.aa.bb.cc', '00:11:22:aa:bb:cc'],
    ['ff:ff:ff:ff:ff:ff', null],
    ['01:00:5e:00:00:01', null],
    ['00:11:22', null],
    ['zz:11:22:aa:bb:cc', null],
  ] as const) {
    t.equal(normalizeMac(input), want, input);
  }
});

t.test('media service, profiles and URIs', async (t) => {
  t.equal(parseMediaXAddr(body('capabilities.xml')), 'http://10.99.0.5:8080/onvif/Media');
  t.equal(onDeviceHost('http://10.99.0.5:8080/onvif/Media', 'http://192.168.1.64/onvif/device_service'), 'http://192.168.1.64/onvif/Media', 'a host we did not reach the camera at is replaced');
  t.equal(onDeviceHost('http://192.168.1.64:8080/onvif/Media', 'http://192.168.1.64/onvif/device_service'), 'http://192.168.1.64:8080/onvif/Media');
  const profiles = parseProfiles(body('profiles.xml'));
  t.same(profiles.map((p) => p.token), ['Profile_2', 'Profile_1'], 'a profile without a token is skipped');
  t.same(chooseProfile(profiles), { token: 'Profile_1', name: 'mainStream', encoding: 'H264', width: 2688, height: 1520 }, 'the largest resolution');
  t.same(parseProfiles(body('profiles-empty.xml')), []);
  t.equal(chooseProfile([]), null);
  const stream = parseMediaUri(body('stream-uri.xml'), 'GetStreamUriResponse');
  t.equal(stream, 'rtsp://admin:secret@192.168.1.64:554/Streaming/Channels/101?transportmode=unicast&profile=Profile_1');
  t.equal(withoutCredentials(stream), 'rtsp://192.168.1.64:554/Streaming/Channels/101?transportmode=unicast&profile=Profile_1');
  t.equal(parseMediaUri(body('snapshot-uri.xml'), 'GetSnapshotUriResponse'), 'http://192.168.1.64/onvif-http/snapshot?Profile_1', 'CDATA');
  t.throws(() => parseMediaUri(body('snapshot-uri.xml'), 'GetStreamUriResponse'), { code: 'ONVIF_BAD_RESPONSE' });
});

t.test("the camera's clock: UTC, or local time with the POSIX TZ's offset", async (t) => {
  t.equal(parseSystemDateAndTime(body('system-date-utc.xml')), Date.UTC(2026, 10, 23, 12, 34, 56));
  t.equal(parseSystemDateAndTime(body('system-date-local.xml')), Date.UTC(2026, 10, 23, 12, 34, 56));
  t.equal(posixTzOffsetMs('CET-1CEST,M3.5.0,M10.5.0/3'), -3_600_000);
  t.equal(posixTzOffsetMs('EST5EDT'), 5 * 3_600_000);
  t.equal(posixTzOffsetMs('<+0530>-5:30'), -(5.5 * 3_600_000));
  t.equal(posixTzOffsetMs(null), 0);
  t.throws(() => parseSystemDateAndTime(body('device-information.xml')), { code: 'ONVIF_BAD_RESPONSE' });
});

t.test('faults: auth faults by subcode or by words, others are plain faults', async (t) => {
  const na = parseSoap(fixture('fault-not-authorized.xml'), 'x').fault!;
  t.same(na.codes, ['Sender', 'NotAuthorized']);
  t.equal(na.reason, 'Sender not Authorized');
  t.ok(isAuthFault(na));
  t.ok(isAuthFault(parseSoap(fixture('fault-wsse.xml'), 'x').fault!), 'wsse:FailedAuthentication');
  const words = parseSoap(fixture('fault-soap11-words.xml'), 'x').fault!;
  t.same(words, { codes: ['Client'], reason: 'Authority failure' });
  t.ok(isAuthFault(words), 'SOAP 1.1, only words');
  const ans = parseSoap(fixture('fault-action-not-supported.xml'), 'x').fault!;
  t.same(ans.codes, ['Receiver', 'ActionNotSupported', 'NoSuchService']);
  t.notOk(isAuthFault(ans));
  t.equal(parseSoap(fixture('device-information.xml'), 'x').fault, null);
});

t.test('not SOAP: an HTML page, truncated XML, a wrong answer', async (t) => {
  t.throws(() => parseSoap(fixture('not-soap.html'), 'GetProfiles'), { code: 'ONVIF_BAD_RESPONSE', message: /not a SOAP envelope/ });
  t.throws(() => parseSoap(fixture('profiles.xml').slice(0, 300), 'GetProfiles'), { code: 'ONVIF_BAD_RESPONSE' });
  t.throws(() => parseProfiles(body('device-information.xml')), { code: 'ONVIF_BAD_RESPONSE', message: /GetProfilesResponse/ });
});

t.test('WS-Security UsernameToken: digest as the spec computes it, text escaped, no milliseconds', async (t) => {
  const nonce = Buffer.alloc(16, 7);
  const created = Date.UTC(2026, 10, 23, 12, 0, 5, 123);
  t.equal(wsuTime(created), '2026-11-23T12:00:05Z');
  const credentials = { username: 'ad<min', password: 'pä&ss' };
  const digestXml = parseXml(envelope('<x/>', { credentials, mode: 'digest', created, nonce }));
  const token = path(digestXml, 'Header', 'Security', 'UsernameToken');
  t.equal(textOf(path(token, 'Username')), 'ad<min');
  t.equal(textOf(path(token, 'Password')), passwordDigest(nonce, '2026-11-23T12:00:05Z', 'pä&ss'));
  t.match(path(token, 'Password')!.attrs.Type, /#PasswordDigest$/);
  t.equal(textOf(path(token, 'Nonce')), nonce.toString('base64'));
  t.equal(textOf(path(token, 'Created')), '2026-11-23T12:00:05Z');
  // A known vector: SHA-1 over nonce ‖ created ‖ password, base64.
  t.equal(passwordDigest(Buffer.from('LKqI6G/AikKCQrN0zqZFlg==', 'base64'), '2010-09-16T07:50:45Z', 'userpassword'), 'tuOSpGlFlIXsozq4HFNeeGeFLEI=');
  const text = parseXml(`<r xmlns:s="urn:s">${securityHeader({ credentials, mode: 'text', created, nonce })}</r>`);
  const pw = path(text, 'Security', 'UsernameToken', 'Password')!;
  t.equal(textOf(pw), 'pä&ss');
  t.match(pw.attrs.Type, /#PasswordText$/);
});
