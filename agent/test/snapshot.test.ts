// The snapshot path against the ONVIF camera simulator's snapshot endpoint (an independent
// Digest implementation), plus a few lying servers of our own: HTML with 200, a JPEG cut short,
// a body too large.
import t, { type Test } from 'tap';
import { createServer, type RequestListener } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { startOnvifSim } from '../../tools/onvif-sim/sim.ts';
import { captureSnapshot, fetchSnapshot, SNAPSHOT_ERROR_RETRYABLE } from '../src/capture/snapshot.js';

async function sim(t: Test, snapshot: 'jpeg' | 'html' | 'none' = 'jpeg') {
  const s = await startOnvifSim({ username: 'admin', password: 'pa:ss word', snapshot });
  t.teardown(() => s.close());
  return s;
}

async function server(t: Test, handler: RequestListener): Promise<string> {
  const srv = createServer(handler).listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/snap.jpg`;
}

const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);

t.test('Digest with the right password gives the camera\'s JPEG; each way of failing has its code', async (t) => {
  const cam = await sim(t);
  const jpeg = await fetchSnapshot({ url: cam.snapshotUrl, username: 'admin', password: 'pa:ss word', timeoutMs: 5000 });
  t.same([jpeg[0], jpeg[1]], [0xff, 0xd8], 'a JPEG');
  t.ok((await sharp(jpeg).metadata()).width! > 0, 'that decodes');
  const url = new URL(cam.snapshotUrl);
  url.username = 'admin';
  url.password = encodeURIComponent('pa:ss word');
  t.equal(await code(fetchSnapshot({ url: url.toString(), timeoutMs: 5000 })), 'ok', 'credentials in the URL work too');
  t.equal(await code(fetchSnapshot({ url: cam.snapshotUrl, username: 'admin', password: 'wrong', timeoutMs: 5000 })), 'SNAPSHOT_AUTH_FAILED');
  t.equal(await code(fetchSnapshot({ url: cam.snapshotUrl, timeoutMs: 5000 })), 'SNAPSHOT_AUTH_FAILED', 'no credentials for a camera that wants them');
  cam.setSnapshotMode('html');
  const html = await fetchSnapshot({ url: cam.snapshotUrl, username: 'admin', password: 'pa:ss word', timeoutMs: 5000 }).catch((e: Error & { code: string }) => e);
  t.equal((html as { code: string }).code, 'SNAPSHOT_NOT_JPEG', 'an HTML page with 200 is not a frame');
  t.match((html as Error).message, /not a JPEG \(text\/html.*starting "</);
  cam.setSnapshotMode('none');
  t.equal(await code(fetchSnapshot({ url: cam.snapshotUrl, username: 'admin', password: 'pa:ss word', timeoutMs: 5000 })), 'SNAPSHOT_FAILED', 'no snapshot (404)');
  const wrongTries = cam.requests.filter((r) => r.op === 'snapshot').length;
  t.ok(wrongTries <= 2 * 6, `at most a challenge and one answer per fetch (${wrongTries} requests for 6 fetches)`);
});

t.test('a JPEG cut short, one too large, a server that never answers', async (t) => {
  const whole = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#357' } }).jpeg().toBuffer();
  const cut = await server(t, (_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(whole.subarray(0, whole.length - 40)));
  t.equal(await code(fetchSnapshot({ url: cut, timeoutMs: 5000 })), 'SNAPSHOT_CORRUPT');
  const big = await server(t, (_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(Buffer.concat([whole, Buffer.alloc(4096)])));
  t.equal(await code(fetchSnapshot({ url: big, timeoutMs: 5000, maxBytes: 1024 })), 'SNAPSHOT_TOO_LARGE');
  const silent = await server(t, () => undefined);
  const started = Date.now();
  t.equal(await code(fetchSnapshot({ url: silent, timeoutMs: 300 })), 'SNAPSHOT_FAILED', 'a camera that never answers');
  t.ok(Date.now() - started < 3000, 'within its timeout');
  t.same(Object.keys(SNAPSHOT_ERROR_RETRYABLE).sort(), ['SNAPSHOT_AUTH_FAILED', 'SNAPSHOT_CORRUPT', 'SNAPSHOT_FAILED', 'SNAPSHOT_NOT_JPEG', 'SNAPSHOT_TOO_LARGE']);
  t.equal(SNAPSHOT_ERROR_RETRYABLE.SNAPSHOT_AUTH_FAILED, false, 'a wrong password does not fix itself');
});

t.test('a capture through the snapshot URI makes both variants and the dHash, and leaves no file behind', async (t) => {
  const cam = await sim(t);
  const workDir = join(t.testdir({}), 'cap');
  const r = await captureSnapshot({ url: cam.snapshotUrl, username: 'admin', password: 'pa:ss word', workDir, timeoutMs: 20_000 });
  t.match(r.dhash, /^[0-9a-f]{1024}$/);
  for (const f of [r.files.original, r.files.compressed]) t.equal((await sharp(f).metadata()).format, 'jpeg');
  t.notOk(existsSync(join(workDir, 'snapshot.jpg')), 'the fetched snapshot is gone');
  cam.setSnapshotMode('html');
  t.equal(await code(captureSnapshot({ url: cam.snapshotUrl, username: 'admin', password: 'pa:ss word', workDir, timeoutMs: 20_000 })), 'SNAPSHOT_NOT_JPEG');
});
