// The ONVIF client's error codes: which are retryable and which permanent (a table test), and
// how transport failures map onto them, against real sockets on loopback.
import t, { type Test } from 'tap';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
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
