// The ONVIF client's error codes: which are retryable and which permanent (a table test), and
// how transport failures map onto them, against real sockets on loopback.
import t, { type Test } from 'tap';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { ONVIF_ERROR_CODES, OnvifError, transportErrorCode, type OnvifErrorCode } from '../src/discovery/onvif-errors.js';
import { OnvifDevice } from '../src/discovery/onvif-device.js';
import { systemClock } from '../src/lib/clock.js';

const TABLE: [OnvifErrorCode, 'retryable' | 'permanent'][] = [
  ['ONVIF_AUTH_FAILED', 'permanent'],
  ['ONVIF_NO_CREDENTIALS', 'permanent'],
  ['ONVIF_TIMEOUT', 'retryable'],
  ['ONVIF_UNREACHABLE', 'retryable'],
  ['ONVIF_BAD_RESPONSE', 'permanent'],
  ['ONVIF_FAULT', 'permanent'],
  ['ONVIF_HTTP_5XX', 'retryable'],
  ['ONVIF_HTTP_4XX', 'permanent'],
  ['ONVIF_NO_MEDIA', 'permanent'],
  ['ONVIF_ABORTED', 'retryable'],
];

t.test('every code is in the table, retryable or permanent as it says', async (t) => {
  t.same(TABLE.map(([c]) => c).sort(), Object.keys(ONVIF_ERROR_CODES).sort(), 'the table covers every code');
  for (const [code, kind] of TABLE) {
    const e = new OnvifError(code, 'x');
    t.equal(e.retryable, kind === 'retryable', `${code} is ${kind}`);
    t.equal(e.code, code);
  }
});

t.test('transport errors: timeouts and unreachable, through causes', async (t) => {
  t.equal(transportErrorCode({ code: 'ECONNREFUSED' }), 'ONVIF_UNREACHABLE');
  t.equal(transportErrorCode({ name: 'TypeError', cause: { code: 'EHOSTUNREACH' } }), 'ONVIF_UNREACHABLE');
  t.equal(transportErrorCode({ code: 'UND_ERR_HEADERS_TIMEOUT' }), 'ONVIF_TIMEOUT');
  t.equal(transportErrorCode(new DOMException('x', 'TimeoutError')), 'ONVIF_TIMEOUT');
  t.equal(transportErrorCode(new Error('other')), undefined);
});

async function server(t: Test, handler: Parameters<typeof createServer>[1]): Promise<{ url: string; srv: Server }> {
  const srv = createServer(handler);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.teardown(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/onvif/device_service`, srv };
}

const device = (xaddr: string, timeoutMs = 500) => new OnvifDevice({ xaddr, clock: systemClock, timeoutMs, credentials: { username: 'u', password: 'p' } });

t.test('a camera that accepts and never answers: ONVIF_TIMEOUT at the call timeout', async (t) => {
  const { url } = await server(t, () => undefined);
  const t0 = performance.now();
  await t.rejects(device(url, 300).measureClock(), { code: 'ONVIF_TIMEOUT', retryable: true });
  const took = performance.now() - t0;
  t.ok(took >= 290 && took < 1500, `${Math.round(took)} ms`);
});

t.test('a camera that drips its answer slower than the deadline: ONVIF_TIMEOUT all the same', async (t) => {
  const { url } = await server(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/soap+xml' });
    const timer = setInterval(() => res.write(' '), 50);
    res.on('close', () => clearInterval(timer));
  });
  await t.rejects(device(url, 400).measureClock(), { code: 'ONVIF_TIMEOUT' });
});

t.test('nobody listening: ONVIF_UNREACHABLE', async (t) => {
  const { url, srv } = await server(t, () => undefined);
  srv.close();
  await once(srv, 'close');
  await t.rejects(device(url).measureClock(), { code: 'ONVIF_UNREACHABLE', retryable: true });
});

t.test('an HTML page: HTTP 4xx/5xx by status, else ONVIF_BAD_RESPONSE; our stop: ONVIF_ABORTED', async (t) => {
  let status = 200;
  const { url } = await server(t, (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/html' });
    res.end('<!DOCTYPE html><html><body>hello</body></html>');
  });
  await t.rejects(device(url).measureClock(), { code: 'ONVIF_BAD_RESPONSE' });
  status = 503;
  await t.rejects(device(url).measureClock(), { code: 'ONVIF_HTTP_5XX', retryable: true });
  status = 404;
  await t.rejects(device(url).measureClock(), { code: 'ONVIF_HTTP_4XX', retryable: false });
  const ac = new AbortController();
  ac.abort();
  await t.rejects(device(url).measureClock(ac.signal), { code: 'ONVIF_ABORTED' });
});

t.test('a body larger than any SOAP answer is refused', async (t) => {
  const { url } = await server(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/soap+xml' });
    res.end(Buffer.alloc(2 * 1024 * 1024, 0x20));
  });
  await t.rejects(device(url, 3000).measureClock(), { code: 'ONVIF_BAD_RESPONSE', message: /larger than/ });
});

t.test('a camera that wants HTTP Digest on its SOAP endpoint: answered, the challenge reused; a wrong password is ONVIF_AUTH_FAILED', async (t) => {
  const fixture = (name: string): string => readFileSync(new URL(`./fixtures/onvif/${name}`, import.meta.url), 'utf8');
  const realm = 'IP Camera(0001)';
  let nonce = 'n-1';
  let authorized = 0;
  let challenged = 0;
  const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
  const { url } = await server(t, (req, res) => {
    const h = req.headers.authorization ?? '';
    const p = Object.fromEntries([...h.matchAll(/(\w+)="?([^",]*)"?/g)].map((m) => [m[1], m[2]]));
    const ok = h.startsWith('Digest ') && p.nonce === nonce && p.response === md5(`${md5(`admin:${realm}:secret`)}:${nonce}:${p.nc}:${p.cnonce}:auth:${md5(`POST:${p.uri}`)}`);
    req.resume();
    if (!ok) {
      challenged++;
      res.writeHead(401, { 'www-authenticate': `Digest realm="${realm}", qop="auth", nonce="${nonce}", algorithm=MD5` }).end();
      return;
    }
    authorized++;
    const action = /action="[^"]*\/(\w+)"/.exec(String(req.headers['content-type']))?.[1];
    res.writeHead(200, { 'content-type': 'application/soap+xml' });
    res.end(fixture(action === 'GetSystemDateAndTime' ? 'system-date-utc.xml' : 'device-information.xml'));
  });
  const dev = new OnvifDevice({ xaddr: url, clock: systemClock, credentials: { username: 'admin', password: 'secret' } });
  t.equal((await dev.getDeviceInformation()).serialNumber, '0012345678');
  t.same([challenged, authorized], [1, 2], 'one challenge, then both calls answered');
  await dev.getDeviceInformation();
  t.same([challenged, authorized], [1, 3], 'the challenge is reused (nc counts up)');
  nonce = 'n-2';
  await dev.getDeviceInformation();
  t.same([challenged, authorized], [2, 4], 'a new nonce: one more challenge');
  const wrong = new OnvifDevice({ xaddr: url, clock: systemClock, credentials: { username: 'admin', password: 'nope' } });
  await t.rejects(wrong.getDeviceInformation(), { code: 'ONVIF_AUTH_FAILED' });
  t.ok(wrong.requests <= 8, `${wrong.requests} requests`);
  await t.rejects(new OnvifDevice({ xaddr: url, clock: systemClock }).getDeviceInformation(), { code: 'ONVIF_NO_CREDENTIALS' });
});
