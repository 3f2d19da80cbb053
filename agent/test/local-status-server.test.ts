// The status page's server at the HTTP level: requests injected into the real app (fastify), the
// real status reader over a real SQLite queue, real ffmpeg for the thumbnails, a fake clock for
// the lock. DeviceAuth is a test double here (its claim needs a cloud; the e2e test has one).
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { DeviceInfo } from '@vigil/protocol';
import { parseConfig } from '../src/config.js';
import { FakeClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { openDb } from '../src/store/db.js';
import { Kv } from '../src/store/kv.js';
import { UploadQueue } from '../src/store/upload-queue.js';
import type { CameraSnapshot } from '../src/health/checks.js';
import { LocalStatusServer } from '../src/local/status-server.js';
import { StatusReader, type AuthView, type ClaimView, type StatusView } from '../src/local/status-view.js';
import { Thumbnails, THUMBNAIL_WIDTH_PX } from '../src/local/thumbnails.js';
import { makeJpeg } from '../../test/helpers/jpeg.js';
import { freePort } from '../../test/helpers/ports.js';

const PIN = '48213957';

/** DeviceAuth's view, as a test double: the state is set by the test, codes are recorded. */
class AuthDouble implements AuthView {
  state = 'none';
  reason = 'no token yet';
  device: DeviceInfo | undefined = undefined;
  claim: ClaimView = { source: 'none', state: 'idle', reason: null, at: null };
  codes: string[] = [];
  submitClaimCode(code: string): void {
    this.codes.push(code);
    this.claim = { source: 'form', state: 'trying', reason: null, at: 1 };
  }
}

async function setup(t: Test) {
  const dir = t.testdir({});
  const clock = new FakeClock(Date.UTC(2026, 11, 5, 12));
  const db = openDb(join(dir, 'agent.db'));
  t.teardown(() => db.close());
  const release = join(dir, 'release');
  writeFileSync(release, 'VIGIL_FIRMWARE_VERSION=1.4.2\nVIGIL_FIRMWARE_BUILD_EPOCH=1700000000\n');
  writeFileSync(join(dir, 'cmdline'), 'vigil.slot=b\n');
  const config = parseConfig({
    cloudUrl: 'http://127.0.0.1:9',
    dataDir: dir,
    system: { releaseFile: release, cmdlineFile: join(dir, 'cmdline'), trybootFile: join(dir, 'none'), clockStatusCommand: ['printf', 'Leap status     : Normal\n'] },
  });
  const queue = new UploadQueue(db);
  const auth = new AuthDouble();
  const thumbnails = new Thumbnails({ ffmpegPath: 'ffmpeg', log: silentLogger() });
  const cams: CameraSnapshot[] = [
    { id: 'cam1', name: 'Front door', intervalMs: 30_000, captureTimeoutMs: 5_000, alive: true, ticks: 0, capturesOk: 0, failures: 0, inFlightSince: null, lastSuccessAt: null, lastCaptureAt: null, lastError: null },
  ];
  const status = new StatusReader({
    config,
    clock,
    hardwareId: 'a'.repeat(32),
    hostName: 'vigil-1a2b',
    deviceName: 'vigil-aaaaaaaa',
    auth,
    queue,
    kv: new Kv(db),
    cameras: () => cams,
    uncaptured: () => [{ camera: 'cam9', name: 'Yard', state: 'stopped', lastCaptureAt: null, capturesOk: 0, failures: 0, lastError: 'ONVIF_AUTH_FAILED: wrong password' }],
    thumbnailAt: (c) => thumbnails.latestAt(c),
  });
  const server = new LocalStatusServer({ host: '127.0.0.1', port: 0, hostName: 'vigil-1a2b', pin: async () => PIN, status, thumbnails, auth, clock, log: silentLogger() });
  const app = await server.build(PIN);
  t.teardown(() => app.close());
  return { dir, clock, app, auth, thumbnails, cams, queue, server, status };
}

const form = (fields: Record<string, string>) => ({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(fields).toString() });

t.test('without a session: the page sends to the login form, the JSON and the thumbnails answer 401', async (t) => {
  const { app } = await setup(t);
  const page = await app.inject({ method: 'GET', url: '/' });
  t.equal(page.statusCode, 303);
  t.equal(page.headers.location, '/login');
  const login = await app.inject({ method: 'GET', url: '/login' });
  t.equal(login.statusCode, 200);
  t.match(login.body, /name="pin"/);
  t.match(login.body, /vigil-1a2b/, 'the login page names the device the technician opened');
  t.match(login.headers['content-security-policy'], /default-src 'none'/);
  t.equal(login.headers['x-frame-options'], 'DENY');
  for (const url of ['/api/status', '/thumbnails/cam1.jpg']) {
    const r = await app.inject({ method: 'GET', url });
    t.equal(r.statusCode, 401, url);
    t.equal(r.json().error.code, 'SESSION_REQUIRED');
  }
  const claim = await app.inject({ method: 'POST', url: '/claim', ...form({ code: 'ABCD-EFGH-JKMN' }) });
  t.equal(claim.statusCode, 401, 'no claim code without the PIN');
  const forged = await app.inject({ method: 'GET', url: '/api/status', cookies: { vigil_session: 'forged' } });
  t.equal(forged.statusCode, 401, 'a made-up session id is nothing');
});

t.test('a wrong PIN: 401 with the message; the fifth locks the form (429, Retry-After) even for the right PIN', async (t) => {
  const { app, clock } = await setup(t);
  const first = await app.inject({ method: 'POST', url: '/login', ...form({ pin: '11111111' }) });
  t.equal(first.statusCode, 401);
  t.match(first.body, /Wrong PIN\. 4 more tries before the form locks/);
  t.notOk(first.headers['set-cookie'], 'no session');
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'POST', url: '/login', ...form({ pin: `2222222${i}` }) })).statusCode, 401);
  const fifth = await app.inject({ method: 'POST', url: '/login', ...form({ pin: '33333333' }) });
  t.equal(fifth.statusCode, 429);
  t.equal(fifth.headers['retry-after'], '30');
  t.match(fifth.body, /Too many wrong PINs: the form is locked\. Try again in 30 seconds/);
  const right = await app.inject({ method: 'POST', url: '/login', ...form({ pin: PIN }) });
  t.equal(right.statusCode, 429, 'locked: the right PIN is refused too');
  await clock.advance(20_000);
  t.equal((await app.inject({ method: 'POST', url: '/login', ...form({ pin: PIN }) })).headers['retry-after'], '10');
  await clock.advance(10_000);
  const sixth = await app.inject({ method: 'POST', url: '/login', ...form({ pin: '44444444' }) });
  t.equal(sixth.statusCode, 429);
  t.equal(sixth.headers['retry-after'], '60', 'the next lock is twice as long');
  t.match(sixth.body, /Try again in 1 minute\b/);
  await clock.advance(60_000);
  const ok = await app.inject({ method: 'POST', url: '/login', ...form({ pin: PIN }) });
  t.equal(ok.statusCode, 303, 'after the lock the right PIN opens the page');
});

t.test('the right PIN: a session cookie (HttpOnly, SameSite=Strict); the page, the JSON, the thumbnail', async (t) => {
  const { app, thumbnails, cams, dir, clock } = await setup(t);
  const login = await app.inject({ method: 'POST', url: '/login', ...form({ pin: ` ${PIN} ` }) });
  t.equal(login.statusCode, 303);
  t.equal(login.headers.location, '/');
  const cookie = String(login.headers['set-cookie']);
  t.match(cookie, /^vigil_session=[A-Za-z0-9_-]{43};/);
  t.match(cookie, /HttpOnly/);
  t.match(cookie, /SameSite=Strict/);
  t.match(cookie, /Max-Age=43200/);
  const session = { vigil_session: /^vigil_session=([^;]+)/.exec(cookie)![1]! };

  const page = await app.inject({ method: 'GET', url: '/', cookies: session });
  t.equal(page.statusCode, 200);
  t.equal(page.headers['cache-control'], 'no-store');
  t.match(page.body, /Front door \(cam1\)/);
  t.match(page.body, /No picture yet/, 'a camera without a frame says so');
  t.match(page.body, /Yard \(cam9\)[\s\S]*ONVIF_AUTH_FAILED: wrong password/, 'a camera that is not captured, with why');
  t.match(page.body, /Vigil firmware 1\.4\.2, slot B/);
  t.match(page.body, /id="claim-form"/, 'no valid token: the claim form');
  t.notMatch(page.body, new RegExp(PIN), 'the PIN is never on the page');

  const json = (await app.inject({ method: 'GET', url: '/api/status', cookies: session })).json<StatusView>();
  t.equal(json.cloudUrl, 'http://127.0.0.1:9');
  t.equal(json.auth.state, 'none');
  t.same(json.checks.map((c) => c.check), ['card', 'firmware', 'update', 'clock', 'queue', 'dead_letters', 'disk'], "the doctor's device checks");
  t.equal(json.device.hostName, 'vigil-1a2b', 'named as mDNS names it');
  t.equal(json.checks.find((c) => c.check === 'clock')!.level, 'ok');
  t.equal(json.token.level, 'fail');
  t.same(json.cameras.map((c) => [c.camera, c.level, c.thumbnailAt]), [['cam1', 'waiting', null], ['cam9', 'stopped', null]]);
  t.equal((await app.inject({ method: 'GET', url: '/thumbnails/cam1.jpg', cookies: session })).statusCode, 404, 'no frame yet: 404');

  // A capture reaches the outbox through the tap: its compressed frame becomes the thumbnail.
  const work = join(dir, 'work');
  await mkdir(work);
  await writeFile(join(work, 'compressed.jpg'), await makeJpeg(1024, 576));
  await writeFile(join(work, 'original.jpg'), await makeJpeg(64, 36));
  const capturedAt = clock.now();
  const accepted: number[] = [];
  await thumbnails.tap(async (c) => void accepted.push(c.capturedAt))({ camera: 'cam1', capturedAt, dhash: '0', files: { compressed: join(work, 'compressed.jpg'), original: join(work, 'original.jpg') } });
  t.same(accepted, [capturedAt], 'the outbox got the capture');
  cams[0] = { ...cams[0]!, capturesOk: 1, lastSuccessAt: clock.monotonic(), lastCaptureAt: capturedAt };
  await clock.advance(5_000); // past the status cache
  const again = await app.inject({ method: 'GET', url: '/', cookies: session });
  t.match(again.body, new RegExp(`<img src="/thumbnails/cam1\\.jpg\\?at=${capturedAt}"`));
  const thumb = await app.inject({ method: 'GET', url: `/thumbnails/cam1.jpg?at=${capturedAt}`, cookies: session });
  t.equal(thumb.statusCode, 200);
  t.equal(thumb.headers['content-type'], 'image/jpeg');
  const meta = await sharp(thumb.rawPayload).metadata();
  t.same([meta.format, meta.width, meta.height], ['jpeg', THUMBNAIL_WIDTH_PX, 180], '320 px wide, the aspect kept');
  t.ok(thumb.rawPayload.length < 40_000, `small: ${thumb.rawPayload.length} bytes`);
  const json2 = (await app.inject({ method: 'GET', url: '/api/status', cookies: session })).json<StatusView>();
  t.same(json2.cameras[0]!.level, 'ok');

  const out = await app.inject({ method: 'POST', url: '/logout', cookies: session });
  t.equal(out.statusCode, 303);
  t.equal((await app.inject({ method: 'GET', url: '/api/status', cookies: session })).statusCode, 401, 'logged out');
});

t.test('the claim form: a code goes to DeviceAuth; a malformed one, or one while the token is valid, does not', async (t) => {
  const { app, auth } = await setup(t);
  const login = await app.inject({ method: 'POST', url: '/login', ...form({ pin: PIN }) });
  const session = { vigil_session: /^vigil_session=([^;]+)/.exec(String(login.headers['set-cookie']))![1]! };
  const bad = await app.inject({ method: 'POST', url: '/claim', cookies: session, ...form({ code: '<img src=x onerror=alert(1)>' }) });
  t.equal(bad.statusCode, 400);
  t.match(bad.body, /That is not a claim code/);
  t.notMatch(bad.body, /onerror/, 'nothing the form sent is echoed');
  const sent = await app.inject({ method: 'POST', url: '/claim', cookies: session, ...form({ code: ' abcd-efgh-jkmn ' }) });
  t.equal(sent.statusCode, 303);
  t.equal(sent.headers.location, '/?notice=claim-sent');
  t.same(auth.codes, ['abcd-efgh-jkmn']);
  const page = await app.inject({ method: 'GET', url: '/?notice=claim-sent', cookies: session });
  t.match(page.body, /Claim code sent/);
  t.match(page.body, /claim code \(from the form\): trying/, 'the new state at once');
  auth.state = 'valid';
  const valid = await app.inject({ method: 'POST', url: '/claim', cookies: session, ...form({ code: 'ABCD-EFGH-JKMN' }) });
  t.equal(valid.statusCode, 409);
  t.same(auth.codes, ['abcd-efgh-jkmn'], 'not sent while the token is valid');
});

t.test('a refused claim shows the advice for its code', async (t) => {
  const { app, auth, clock } = await setup(t);
  const login = await app.inject({ method: 'POST', url: '/login', ...form({ pin: PIN }) });
  const session = { vigil_session: /^vigil_session=([^;]+)/.exec(String(login.headers['set-cookie']))![1]! };
  auth.claim = { source: 'card', state: 'refused', reason: 'claim code refused: CLAIM_CODE_EXPIRED: claim code expired', at: 2 };
  const page = await app.inject({ method: 'GET', url: '/', cookies: session });
  t.match(page.body, /claim code \(from the card\): refused: claim code refused: CLAIM_CODE_EXPIRED: claim code expired — this claim code has expired; ask for a new one/);
  auth.state = 'valid';
  auth.device = { deviceId: 'd1', siteId: 's1', site: 'Main St', name: 'Kitchen' };
  await clock.advance(5_000);
  const valid = await app.inject({ method: 'GET', url: '/', cookies: session });
  t.notMatch(valid.body, /id="claim-form"/, 'a valid token: no form');
  t.match(valid.body, /<h1>Kitchen<\/h1>/, "the cloud's name for the device");
  t.match(valid.body, /accepted: device &#34;Kitchen&#34; at site &#34;Main St&#34;/);
});

t.test('start() listens until stopped, and a taken port is retried, never a crash', async (t) => {
  const { status, thumbnails, auth, clock } = await setup(t);
  const port = await freePort();
  const make = () => new LocalStatusServer({ host: '127.0.0.1', port, hostName: 'vigil-1a2b', pin: async () => PIN, status, thumbnails, auth, clock, log: silentLogger() });
  const a = make();
  const stopA = new AbortController();
  const runningA = a.start(stopA.signal);
  await t.resolves(waitUntil(() => a.address !== null));
  const res = await fetch(`http://127.0.0.1:${port}/api/status`);
  t.equal(res.status, 401);
  // keep a connection open: the stop must not wait for it
  const keep = await fetch(`http://127.0.0.1:${port}/login`, { headers: { connection: 'keep-alive' } });
  await keep.text();

  const b = make();
  const stopB = new AbortController();
  const runningB = b.start(stopB.signal);
  await clock.advance(0);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(b.address, null, 'the port is taken: not listening, still running');
  t.equal(clock.pendingSleepers, 1, 'waiting to try again');
  stopB.abort();
  await t.resolves(runningB, 'stops while it waits');

  const t0 = performance.now();
  stopA.abort();
  await runningA;
  t.ok(performance.now() - t0 < 1_500, `stopped in ${Math.round(performance.now() - t0)} ms`);
  await t.rejects(fetch(`http://127.0.0.1:${port}/login`), 'closed');
});

async function waitUntil(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
