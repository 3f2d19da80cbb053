// The status page as a technician uses it: the real agent process (built CLI) with the real
// cloud and the real RTSP test camera, its page on loopback, driven in Debian's Chromium by
// playwright-core. Without the PIN nothing shows; a wrong PIN says so; the right one shows the
// cameras with a live thumbnail (a real 320 px JPEG) and, while the device has no token, the
// claim form, through which the device is then claimed. Five wrong PINs lock the form.
import t, { type Test } from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera, startSilentCamera } from '../helpers/rtsp-camera.js';
import { startAgentProcess, writeAgentConfig } from '../helpers/agent-process.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';

const CHROMIUM = '/usr/bin/chromium';
/** As the machine's notes prescribe: nothing may reach beyond loopback. */
const CHROMIUM_ARGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A POST of a form, as the browser sends it, without following the redirect. */
async function post(url: string, fields: Record<string, string>, cookie?: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(fields).toString(),
  });
}

async function launch(t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, chromiumSandbox: false, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.teardown(() => browser.close());
  return browser;
}

/** Submits the page's form and waits for the answer to the POST (the browser then follows a redirect). */
async function submit(page: Page, path: string): Promise<number> {
  const [res] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === 'POST'),
    page.click(`form[action="${path}"] button[type="submit"]`),
  ]);
  await page.waitForLoadState('load');
  return res.status();
}

t.test('the status page: PIN, cameras with live thumbnails, the claim form, the lock', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1:ball'], size: '1280x720' });
  const silent = await startSilentCamera(t);
  const dataDir = await tmpDir(t);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const release = join(dataDir, 'release');
  writeFileSync(release, 'VIGIL_FIRMWARE_VERSION=1.4.2\nVIGIL_FIRMWARE_BUILD_EPOCH=1700000000\n');
  writeFileSync(join(dataDir, 'cmdline'), 'console=ttyAMA0 vigil.slot=b rootwait\n');
  const config = writeAgentConfig(dataDir, {
    cloudUrl: cloud.url,
    deviceName: 'shop-front',
    captureIntervalMs: 4_000,
    captureTimeoutMs: 3_000,
    rtspTimeoutMs: 2_000,
    update: { enabled: false },
    local: { host: '127.0.0.1', port },
    cameras: [
      { id: 'cam1', name: 'Front door', url: camera.url('/cam1') },
      // Accepts the connection and never sends a frame: no thumbnail, ever
      { id: 'cam2', name: 'Back yard', url: silent.url('/cam2') },
    ],
    system: {
      releaseFile: release,
      cmdlineFile: join(dataDir, 'cmdline'),
      trybootFile: join(dataDir, 'no-tryboot'),
      clockStatusCommand: ['printf', 'Reference ID    : C0A80001\nLeap status     : Normal\n'],
    },
  });
  // Not claimed: the technician claims it through the page
  const agent = startAgentProcess(t, config);
  const listening = await agent.waitForLog((l) => l.msg === 'status page listening', 20_000);
  t.match(listening, { host: '127.0.0.1', port }, 'listens where the config says');
  // The PIN the dashboard shows (the heartbeat carries it); on a new device the agent made it
  const pinFile = join(dataDir, 'setup-pin');
  const pin = readFileSync(pinFile, 'utf8').trim();
  t.match(pin, /^\d{8}$/, 'an 8-digit PIN was made and stored');
  const wrongPin = pin === '00000000' ? '11111111' : '00000000';

  await t.test('without the PIN: the page sends to the login form, the JSON endpoint answers 401', async (t) => {
    const page = await fetch(`${base}/`, { redirect: 'manual' });
    t.equal(page.status, 303);
    t.equal(page.headers.get('location'), '/login');
    const api = await fetch(`${base}/api/status`);
    t.equal(api.status, 401);
    t.match(await api.json(), { error: { code: 'SESSION_REQUIRED' } });
    t.equal((await fetch(`${base}/thumbnails/cam1.jpg`)).status, 401, 'no thumbnail either');
    t.equal((await post(`${base}/claim`, { code: 'ABCD-EFGH-JKMN' })).status, 401, 'no claim code either');
  });

  await t.test('in the browser', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: run scripts/deps.sh (Debian package chromium)` }, async (t) => {
    const browser = await launch(t);
    const context = await browser.newContext();
    const page = await context.newPage();

    await page.goto(`${base}/`);
    t.equal(new URL(page.url()).pathname, '/login', 'the status URL shows the login form');
    t.equal(await page.locator('#pin').count(), 1);

    await page.fill('#pin', wrongPin);
    t.equal(await submit(page, '/login'), 401, 'a wrong PIN: 401');
    t.match(await page.textContent('#error'), /Wrong PIN\. 4 more tries before the form locks/, 'with a clear message');
    t.same(await context.cookies(), [], 'and no session');

    await page.fill('#pin', pin);
    t.equal(await submit(page, '/login'), 303, 'the right PIN');
    t.equal(new URL(page.url()).pathname, '/', 'opens the status page');
    t.equal(await page.textContent('h1'), 'shop-front');
    const cookies = await context.cookies();
    t.match(cookies, [{ name: 'vigil_session', httpOnly: true, sameSite: 'Strict' }], 'an HttpOnly, SameSite=Strict session cookie');
    const cookie = `vigil_session=${cookies[0]!.value}`;
    t.match(await page.textContent('[data-camera="cam1"]'), /Front door \(cam1\)/);
    t.match(await page.textContent('[data-camera="cam2"] .noframe'), /No picture yet/, 'a camera without a frame: the placeholder');
    t.match(await page.textContent('[data-check="firmware"]'), /Vigil firmware 1\.4\.2, slot B/);
    t.match(await page.textContent('[data-check="clock"]'), /synchronised/);

    // The page reloads itself: the first capture's thumbnail appears without a click
    const img = page.locator('[data-camera="cam1"] img');
    await img.waitFor({ state: 'attached', timeout: 30_000 });
    // Waits from here, not page.waitForFunction: that evaluates strings in the page, which the
    // page's Content-Security-Policy rightly forbids. (The type-check has no DOM library.)
    const natural = async (): Promise<number[]> => {
      try {
        return await img.evaluate((i) => {
          const e = i as unknown as { complete: boolean; naturalWidth: number; naturalHeight: number };
          return e.complete ? [e.naturalWidth, e.naturalHeight] : [0, 0];
        });
      } catch {
        return [0, 0]; // the page reloaded under us
      }
    };
    await waitFor(async () => (await natural())[0]! > 0, 15_000, 'the thumbnail has loaded');
    const size = await natural();
    t.same(size, [320, 180], 'the thumbnail loads: 320 px wide, the aspect of the 1280x720 camera');
    const src = (await img.getAttribute('src'))!;
    t.match(src, /^\/thumbnails\/cam1\.jpg\?at=\d+$/);
    const thumb = await fetch(base + src, { headers: { cookie } });
    t.equal(thumb.status, 200);
    t.equal(thumb.headers.get('content-type'), 'image/jpeg');
    const jpeg = Buffer.from(await thumb.arrayBuffer());
    t.same([jpeg[0], jpeg[1], jpeg.at(-2), jpeg.at(-1)], [0xff, 0xd8, 0xff, 0xd9], 'a whole JPEG (SOI ... EOI)');
    const meta = await sharp(jpeg).metadata();
    t.same([meta.format, meta.width, meta.height], ['jpeg', 320, 180], 'decodes as a 320x180 JPEG');
    t.ok(jpeg.length < 40_000, `small: ${jpeg.length} bytes`);

    const json = (await (await fetch(`${base}/api/status`, { headers: { cookie } })).json()) as { auth: { state: string; canClaim: boolean }; cameras: { camera: string; level: string; thumbnailAt: number | null }[] };
    t.not(json.auth.state, 'valid', 'the JSON has the same facts: no valid token');
    t.equal(json.auth.canClaim, true, 'so the claim form is offered');
    t.match(json.cameras, [{ camera: 'cam1', level: 'ok', thumbnailAt: Number }, { camera: 'cam2', thumbnailAt: null }]);

    // A code the cloud does not know: refused, with the cloud's reason and what to do
    await page.fill('#code', 'ABCD-EFGH-JKMN');
    t.equal(await submit(page, '/claim'), 303);
    t.match(await page.textContent('#notice'), /Claim code sent/);
    await page.locator('#claim-state', { hasText: 'refused' }).waitFor({ timeout: 20_000 });
    t.match(await page.textContent('#claim-state'), /claim code \(from the form\): refused: .*CLAIM_CODE_UNKNOWN.* — no such claim code/);

    // The dashboard's code: the device is claimed, the form goes, the token is accepted
    await page.fill('#code', await cloud.claimCode('status-page-site'));
    t.equal(await submit(page, '/claim'), 303);
    await agent.waitForLog((l) => l.msg === 'device claimed', 20_000);
    await page.locator('[data-check="token"] .lv.ok').waitFor({ timeout: 20_000 });
    t.equal(await page.locator('#claim-form').count(), 0, 'a valid token: the claim form is gone');
    t.match(await page.textContent('[data-check="token"]'), /accepted: device "shop-front" at site "status-page-site"/);
    t.match(await page.textContent('#claim-state'), /claimed/);

    await page.click('form[action="/logout"] button');
    await page.waitForURL(`${base}/login`);
    t.equal((await fetch(`${base}/api/status`, { headers: { cookie } })).status, 401, 'logged out: the session is gone');
  });

  await t.test('five wrong PINs lock the form: 429 with Retry-After, even for the right PIN', async (t) => {
    for (let i = 1; i <= 4; i++) {
      const r = await post(`${base}/login`, { pin: wrongPin });
      t.equal(r.status, 401, `wrong PIN ${i}`);
      t.match(await r.text(), new RegExp(`${5 - i} more tr`));
    }
    const locked = await post(`${base}/login`, { pin: wrongPin });
    t.equal(locked.status, 429, 'the fifth');
    t.equal(locked.headers.get('retry-after'), '30');
    t.match(await locked.text(), /Too many wrong PINs: the form is locked\. Try again in 30 seconds/);
    const right = await post(`${base}/login`, { pin });
    t.equal(right.status, 429, 'locked: the right PIN is refused too');
    t.ok(Number(right.headers.get('retry-after')) <= 30);
    await waitFor(() => agent.logs.some((l) => l.msg === 'status page: setup PIN form locked after wrong PINs'), 2_000, 'the lock is logged');
    t.ok(agent.logs.filter((l) => l.msg === 'status page: wrong setup PIN').length >= 4, 'wrong PINs are logged');
    t.notOk(agent.logs.some((l) => JSON.stringify(l).includes(pin)), 'the PIN never appears in the logs');
  });

  const t0 = Date.now();
  const exit = await agent.stop();
  t.equal(exit.code, 0, `the agent stops cleanly with the page open (${Date.now() - t0} ms)`);
  await t.rejects(fetch(`${base}/login`), 'and the page is closed');
});

t.test("the card's SETUP_PIN is the page's PIN, and is stored", async (t) => {
  const cloud = await startTestCloud(t);
  const dataDir = await tmpDir(t);
  const port = await freePort();
  const card = join(dataDir, 'card.txt');
  writeFileSync(card, '\uFEFF# Vigil device settings\r\nSETUP_PIN=48213957\r\n');
  const config = writeAgentConfig(dataDir, {
    cloudUrl: cloud.url,
    update: { enabled: false },
    local: { host: '127.0.0.1', port },
    card: { file: card, eraseCommand: [] },
  });
  const agent = startAgentProcess(t, config);
  await agent.waitForLog((l) => l.msg === 'status page listening', 20_000);
  t.equal(readFileSync(join(dataDir, 'setup-pin'), 'utf8'), '48213957\n', 'stored on /data, so it outlives the card');
  t.equal((await post(`http://127.0.0.1:${port}/login`, { pin: '12345678' })).status, 401);
  const ok = await post(`http://127.0.0.1:${port}/login`, { pin: '48213957' });
  t.equal(ok.status, 303, "the card's PIN opens the page");
  t.match(ok.headers.get('set-cookie'), /^vigil_session=/);
  t.equal((await agent.stop()).code, 0);
});
