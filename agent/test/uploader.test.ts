// Uploaders against the real cloud on a loopback port, real SQLite and real files.
import t, { type Test } from 'tap';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Variant } from '@vigil/protocol';
import { openDb } from '../src/store/db.js';
import { UploadQueue } from '../src/store/upload-queue.js';
import { Counters } from '../src/store/counters.js';
import { Kv } from '../src/store/kv.js';
import { Bus } from '../src/lib/bus.js';
import { FakeClock, scaledClock, systemClock, type Clock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { CloudClient } from '../src/cloud/cloud-client.js';
import { Uploader, DEFAULT_UPLOAD_POLICY, type UploadPolicy } from '../src/upload/uploader.js';
import { TokenVault } from '../src/auth/token-vault.js';
import { DeviceAuth } from '../src/auth/device-auth.js';
import { makeJpeg } from '../../test/helpers/jpeg.js';
import { startTestCloud, type TestCloud } from '../../test/helpers/cloud.js';
import { waitFor } from '../../test/helpers/wait.js';

const HASH = 'c'.repeat(1024);

async function rig(
  t: Test,
  cloud: TestCloud | { url: string },
  opts: { token?: string | (() => string | undefined); clock?: Clock; policy?: Partial<UploadPolicy> } = {},
) {
  const dir = t.testdir({});
  const db = openDb(join(dir, 'agent.db'));
  const queue = new UploadQueue(db);
  const counters = new Counters(db);
  const bus = new Bus();
  const clock = opts.clock ?? systemClock;
  const token = typeof opts.token === 'function' ? opts.token : () => opts.token as string | undefined;
  const client = new CloudClient({ baseUrl: cloud.url, token, timeoutMs: 5000 });
  const policy = { ...DEFAULT_UPLOAD_POLICY, activePollMs: 100, idlePollMs: 200, ...opts.policy };
  const make = (variant: Variant, camera = 'cam1') =>
    new Uploader({ camera, variant, queue, counters, client, bus, clock, log: silentLogger(), policy, random: () => 0.5 });
  const uploaders = [make('compressed'), make('original')];
  const stop = new AbortController();
  let running: Promise<unknown> | undefined;
  t.teardown(async () => {
    stop.abort();
    await running;
    await client.close();
    db.close();
  });
  let n = 0;
  const enqueue = async (variant: Variant, data: Buffer, camera = 'cam1', capturedAt = Date.UTC(2026, 10, 23, 12) + ++n * 30_000) => {
    mkdirSync(join(dir, 'spool', camera), { recursive: true });
    const imagePath = join(dir, 'spool', camera, `${capturedAt}-${variant}.jpg`);
    writeFileSync(imagePath, data);
    queue.enqueue(
      [{ camera, imagePath, capturedAt, variant, dhash: HASH, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') }],
      Date.now(),
    );
    bus.emit('queue:enqueued', camera, variant);
    return { imagePath, capturedAt };
  };
  const enqueuePair = async (origSize: [number, number] = [640, 480]) => {
    const capturedAt = Date.UTC(2026, 10, 23, 12) + ++n * 30_000;
    await enqueue('original', await makeJpeg(...origSize), 'cam1', capturedAt);
    await enqueue('compressed', await makeJpeg(160, 120), 'cam1', capturedAt);
  };
  const start = () => {
    running = Promise.all(uploaders.map((u) => u.start(stop.signal)));
  };
  const depth = () => queue.depth().reduce((a, d) => a + d.count, 0);
  return { dir, db, queue, counters, bus, client, uploaders, enqueue, enqueuePair, start, depth, stop };
}

t.test('a backlog drains compressed-first, exactly once, and the spool is emptied', async (t) => {
  const cloud = await startTestCloud(t);
  const { token } = await cloud.claim();
  const r = await rig(t, cloud, { token });
  for (let i = 0; i < 5; i++) await r.enqueuePair();
  r.start();
  await waitFor(() => r.depth() === 0, 20_000, 'queue drained');
  const frames = await cloud.allFrames();
  t.equal(frames.length, 10, 'one record per queued file');
  const lastCompressed = Math.max(...frames.filter((f) => f.variant === 'compressed').map((f) => f.receivedAt));
  const firstOriginal = Math.min(...frames.filter((f) => f.variant === 'original').map((f) => f.receivedAt));
  t.ok(lastCompressed <= firstOriginal, 'every compressed frame arrived before the first original');
  t.equal(r.counters.get('uploaded_compressed'), 5);
  t.equal(r.counters.get('uploaded_original'), 5);
  t.equal(r.queue.deadLetterCount(), 0);
});

t.test('a retried upload (crash after complete, before the row was deleted) never creates a second record', async (t) => {
  const cloud = await startTestCloud(t);
  const { token } = await cloud.claim();
  const r = await rig(t, cloud, { token });
  const data = await makeJpeg(320, 240);
  const at = Date.UTC(2026, 10, 23, 13);
  await r.enqueue('compressed', data, 'cam1', at);
  r.start();
  await waitFor(() => r.depth() === 0, 10_000, 'first upload');
  await r.enqueue('compressed', data, 'cam1', at);
  await waitFor(() => r.depth() === 0, 10_000, 'retry settled');
  t.equal((await cloud.allFrames()).length, 1);
  t.equal(r.counters.get('uploaded_compressed'), 2, 'the retry was acknowledged as already stored');
});

t.test('429 with Retry-After: the uploader waits and loses nothing', async (t) => {
  const cloud = await startTestCloud(t, { deviceRateLimit: 4, rateLimitWindowMs: 1500 });
  const { token } = await cloud.claim();
  const r = await rig(t, cloud, { token });
  for (let i = 0; i < 4; i++) await r.enqueuePair([320, 240]);
  const t0 = Date.now();
  r.start();
  await waitFor(() => r.depth() === 0, 30_000, 'queue drained through the rate limit');
  const failures = r.uploaders.reduce((a, u) => a + u.status.failures, 0);
  t.ok(failures > 0, `rate limited ${failures} times`);
  t.ok(Date.now() - t0 >= 1000, 'the drain waited for the window');
  t.equal(r.queue.deadLetterCount(), 0, 'nothing dead-lettered');
  t.equal((await cloud.allFrames()).length, 8);
});

t.test('413 and 415 are permanent: dead-lettered, counted, the rest still flows', async (t) => {
  const cloud = await startTestCloud(t, { maxObjectBytes: 60_000 });
  const { token } = await cloud.claim();
  const r = await rig(t, cloud, { token });
  for (let i = 0; i < 2; i++) await r.enqueuePair([1024, 768]);
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#f00' } }).png().toBuffer();
  const pngItem = await r.enqueue('compressed', png);
  r.start();
  await waitFor(() => r.depth() === 0, 20_000, 'queue settled');
  t.equal(r.counters.get('dead_letter_http_413'), 2, 'both oversized originals');
  t.equal(r.counters.get('dead_letter_http_415'), 1, 'the PNG');
  t.equal(r.queue.deadLetterCount(), 3);
  t.ok(existsSync(pngItem.imagePath), 'a dead letter keeps its file for inspection');
  t.equal((await cloud.allFrames()).length, 2, 'the compressed frames arrived');
});

t.test('a truncated JPEG: corrupted on disk → corrupt_file; captured truncated → 422; no crash', async (t) => {
  const cloud = await startTestCloud(t);
  const { token } = await cloud.claim();
  const r = await rig(t, cloud, { token });
  const good = await makeJpeg(320, 240);
  const changed = await r.enqueue('compressed', good);
  truncateSync(changed.imagePath, 1000);
  await r.enqueue('compressed', good.subarray(0, good.length - 500));
  await r.enqueue('compressed', await makeJpeg(320, 240));
  r.start();
  await waitFor(() => r.depth() === 0, 20_000, 'queue settled');
  t.equal(r.counters.get('dead_letter_corrupt_file'), 1);
  t.equal(r.counters.get('dead_letter_http_422'), 1);
  t.equal((await cloud.allFrames()).length, 1, 'the good frame still arrived');
});

t.test('a revoked token pauses every uploader; a new token resumes them all', async (t) => {
  const cloud = await startTestCloud(t);
  const first = await cloud.claim('hw-revoke');
  const clock = scaledClock(20);
  // The client asks DeviceAuth for the token, as in the agent.
  const r = await rig(t, cloud, { clock, token: () => auth.token() });
  const vault = new TokenVault(new Kv(r.db), Buffer.alloc(32, 7));
  vault.save(first.token, Date.now());
  const auth = new DeviceAuth({
    vault,
    kv: new Kv(r.db),
    client: r.client,
    bus: r.bus,
    clock,
    log: silentLogger(),
    hardwareId: 'hw-revoke',
    deviceName: 'd',
    checkSchedule: '0 0 1 1 *',
  });
  const authStop = new AbortController();
  const authStopped = auth.start(authStop.signal);
  t.teardown(() => {
    authStop.abort();
    return authStopped;
  });
  await waitFor(() => auth.state === 'valid', 10_000, 'token checked');
  r.start();
  await r.enqueuePair([320, 240]);
  await waitFor(() => r.depth() === 0, 10_000, 'first pair uploaded');
  const rev = await cloud.admin('POST', `/admin/v1/devices/${first.deviceId}/revoke`);
  t.equal(rev.status, 200);
  await r.enqueuePair([320, 240]);
  await r.enqueuePair([320, 240]);
  await waitFor(() => r.uploaders.every((u) => u.status.paused), 10_000, 'all uploaders paused');
  await waitFor(() => auth.state === 'invalid', 10_000, 'auth marked the token invalid');
  t.equal(r.depth(), 4, 'nothing dropped while paused');
  t.equal(r.queue.deadLetterCount(), 0);
  const second = await cloud.claim('hw-revoke');
  t.equal(second.deviceId, first.deviceId, 're-claim keeps the device record');
  vault.save(second.token, Date.now());
  await waitFor(() => r.depth() === 0, 15_000, 'uploads resumed with the new token');
  t.ok(r.uploaders.every((u) => !u.status.paused));
  t.equal((await cloud.allFrames()).length, 6);
});

t.test('5xx: each try counts, backoff grows, and after maxAttempts the row is given up and its file freed', async (t) => {
  // A stand-in for a cloud in trouble: a real HTTP server that answers every request with 503.
  const server = createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ statusCode: 503, code: 'UNAVAILABLE', error: 'Service Unavailable', message: 'deploying' }));
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.teardown(() => new Promise<void>((res) => server.close(() => res())));
  const port = (server.address() as { port: number }).port;
  const clock = new FakeClock();
  const r = await rig(t, { url: `http://127.0.0.1:${port}` }, { token: 'vgl_x', clock, policy: { maxAttempts: 3 } });
  const item = await r.enqueue('compressed', await makeJpeg(64, 64), 'cam1', clock.now());
  const u = r.uploaders[0]!;
  const signal = new AbortController().signal;
  const waits: number[] = [];
  for (let i = 0; i < 3; i++) {
    await u.step(signal);
    const row = r.queue.depth().length ? r.queue.nextReady('cam1', 'compressed', clock.now() + 1e9, 1e12) : undefined;
    if (row) waits.push(row.nextRetryAt - clock.now());
    await clock.advance(31 * 60_000);
  }
  t.same(waits, [30_000, 60_000], 'the ladder: 30 s, then 60 s');
  t.equal(r.depth(), 0, 'given up after 3 tries');
  t.equal(r.counters.get('dead_letter_gave_up'), 1);
  t.notOk(existsSync(item.imagePath), 'the file of a given-up row is freed');
});

t.test('an outage charges the frame nothing: after 25 h unreachable, one 5xx is attempt 1, not a give-up', async (t) => {
  // A stand-in for the network and a troubled cloud: first every connection is reset, then 503s.
  let mode: 'reset' | '503' = 'reset';
  const server = createServer((req, res) => {
    if (mode === 'reset') return req.socket.destroy();
    res.writeHead(503).end();
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.teardown(() => new Promise<void>((res) => server.close(() => res())));
  const clock = new FakeClock();
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const r = await rig(t, { url }, { token: 'vgl_x', clock });
  await r.enqueue('compressed', await makeJpeg(64, 64), 'cam1', clock.now());
  const u = r.uploaders[0]!;
  const signal = new AbortController().signal;
  const row = () => r.queue.nextReady('cam1', 'compressed', clock.now() + 1e12, 1e12)!;
  for (let i = 0; i < 10; i++) {
    await u.step(signal);
    await clock.advance(3 * 3_600_000);
  }
  t.equal(row().attemptCount, 0, 'unreachable tries are not charged');
  t.equal(row().firstFailedAt, null, 'nor do they start the give-up clock');
  mode = '503';
  await u.step(signal);
  t.equal(row().attemptCount, 1);
  t.equal(r.queue.deadLetterCount(), 0, 'not given up');
});

t.test('a stop lets the upload in flight finish, so the cloud and the queue agree', async (t) => {
  // A stand-in for a slow cloud: presign answers "already stored" after 500 ms.
  const server = createServer((_req, res) => {
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'exists', frameId: 'frm_1' })), 500);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.teardown(() => new Promise<void>((res) => server.close(() => res())));
  const r = await rig(t, { url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }, { token: 'vgl_x' });
  await r.enqueue('compressed', await makeJpeg(64, 64));
  const stop = new AbortController();
  const running = r.uploaders[0]!.start(stop.signal);
  await new Promise((res) => setTimeout(res, 150));
  stop.abort();
  await running;
  t.equal(r.depth(), 0, 'the answer that arrived after the stop was still recorded');
});
