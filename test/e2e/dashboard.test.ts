// The dashboard as a person uses it, in Debian's Chromium driven by playwright-core, against the
// real cloud on loopback: a claimed device uploads real JPEGs through the device API, the real
// analysis pipeline runs (its loop, real time) with a test double for the vision model. Log in
// through the form; see a camera's latest frame; open /events and watch an event arrive over the
// live stream (no reload); acknowledge its alert from the row the script drew; a second page
// sees the acknowledgement live; the API agrees. Then a phone-sized screen: no page scrolls
// sideways.
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { claimDevice, DASHBOARD_PASSWORD, DASHBOARD_USER, addDashboardUser, describeJpeg, listAlerts, realClock, startTestCloud, uploadFrame } from '../../cloud/test/helpers.js';
import { FixedAnalyser } from '../../cloud/test/doubles/fixed-analyser.js';
import { encode, paste, person, photoScene } from '../../cloud/test/scenes.js';
import { startCloud } from '../../cloud/src/main.js';
import { waitFor } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
/** As the machine's notes prescribe: nothing may reach beyond loopback. */
const CHROMIUM_ARGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function launch(t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, chromiumSandbox: false, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.teardown(() => browser.close());
  return browser;
}

/** An image's natural size once loaded ([0, 0] before). The type-check has no DOM library. */
async function natural(img: Locator): Promise<number[]> {
  return img.evaluate((i) => {
    const e = i as unknown as { complete: boolean; naturalWidth: number; naturalHeight: number };
    return e.complete ? [e.naturalWidth, e.naturalHeight] : [0, 0];
  });
}

/** How far the page itself scrolls sideways (0: it fits the screen). */
async function sideways(page: Page): Promise<number> {
  return page.locator('html').evaluate((html) => {
    const h = html as unknown as { scrollWidth: number; clientWidth: number };
    return h.scrollWidth - h.clientWidth;
  });
}

t.test('the dashboard in Chromium: login, latest frame, a live event, acknowledge', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: run scripts/deps.sh (Debian package chromium)` }, async (t) => {
  const started = Date.now();
  // The vision model's test double: the empty scene is "low"; what comes after it, "critical".
  const analyser = new FixedAnalyser();
  analyser.assessment = { level: 'low', riskScore: 5, summary: 'An empty shop floor', reasoning: 'Nobody there.', observations: [] };
  const cloud = await startTestCloud(t, { host: '127.0.0.1', batchWindowS: 0 }, realClock(), { analyser });
  await addDashboardUser(cloud);
  const { token } = await claimDevice(cloud, 'hw-shop-1', 'Cafe Lune');
  const scene = await photoScene();
  const upload = async (jpeg: Buffer) => uploadFrame(cloud, token, await describeJpeg(jpeg), { camera: 'cam-a', capturedAt: Date.now() });

  // The empty scene: the camera's latest frame, analysed as "low" (no alert)
  const firstFrame = await upload(await encode(scene));
  await waitFor(async () => (await cloud.store.events.listEvents({ limit: 5 })).length === 1, 15_000, 'the first frame analysed');
  t.equal((await listAlerts(cloud, 'state=open')).length, 0, 'a low event opens no alert');

  const browser = await launch(t);
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));

  await page.goto(`${cloud.url}/events`);
  t.equal(new URL(page.url()).pathname, '/login', 'not logged in: the login form');
  await page.fill('input[name="user"]', DASHBOARD_USER);
  await page.fill('input[name="password"]', DASHBOARD_PASSWORD);
  await Promise.all([page.waitForURL(`${cloud.url}/events`), page.click('form.login button')]);
  t.pass('logged in through the form, back to /events');

  await page.goto(`${cloud.url}/`);
  const latest = page.locator('img[data-latest-frame]');
  t.equal(await latest.count(), 1, 'the overview shows the camera’s latest frame');
  t.equal(await latest.getAttribute('src'), `/admin/v1/frames/${firstFrame}/image`, 'the newest compressed frame');
  await waitFor(async () => (await natural(latest))[0]! > 0, 10_000, 'the latest frame has loaded');
  t.same(await natural(latest), [640, 360], 'it loads: the real 640x360 JPEG');
  await page.goto(`${cloud.url}/cameras`);
  const cameraFrame = page.locator('a.latest-frame img');
  await waitFor(async () => (await natural(cameraFrame))[0]! > 0, 10_000, 'the cameras page’s latest frame has loaded');
  t.pass('the cameras page shows it too');

  // /events, live
  await page.goto(`${cloud.url}/events`);
  const live = page.locator('#live');
  await live.filter({ hasText: /^live$/ }).waitFor({ timeout: 10_000 });
  t.equal(await page.locator('article.event').count(), 1, 'the first event is on the page');
  t.equal(await page.locator('table[data-live-alerts] tr[data-alert-id]').count(), 0, 'no open alert yet');
  const summary = 'A person behind the counter after closing <b>time</b>';
  analyser.assessment = { level: 'critical', riskScore: 95, summary, reasoning: 'Scripted by the test.', observations: ['one person'] };
  let navigations = 0;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations++;
  });
  // Marks this document: a reload would lose the mark.
  await page.locator('#timeline').evaluate((el) => (el as unknown as { dataset: Record<string, string> }).dataset.mark = 'before');

  const uploadedAt = Date.now();
  const secondFrame = await upload(await encode(await paste(scene, await person(200), 220, 80)));
  const inserted = page.locator('article.event[data-live="inserted"]');
  await inserted.waitFor({ timeout: 15_000 });
  const arrivedMs = Date.now() - uploadedAt;
  t.ok(arrivedMs < 10_000, `the event appears ${arrivedMs} ms after the upload`);
  t.equal(navigations, 0, 'without any navigation');
  t.equal(await page.locator('#timeline').getAttribute('data-mark'), 'before', 'in the same document (no reload)');
  t.equal(await page.locator('article.event').first().getAttribute('data-live'), 'inserted', 'at the top of the timeline');
  t.equal(await inserted.locator('.summary').textContent(), summary, 'its summary, as text (the tags shown, not parsed)');
  t.equal(await inserted.locator('.summary b').count(), 0);
  t.equal(await inserted.locator('header .badge.lvl-critical').textContent(), 'critical', 'a critical badge');
  t.match(await inserted.locator('.risk').textContent(), 'risk 95');
  const thumb = inserted.locator('.thumbs img');
  t.equal(await thumb.getAttribute('src'), `/admin/v1/frames/${secondFrame}/image`);
  await waitFor(async () => (await natural(thumb))[0]! > 0, 10_000, 'the event’s frame has loaded');

  const events = await cloud.store.events.listEvents({ limit: 5 });
  const alertId = events[0]!.alertId!;
  t.ok(alertId, 'the critical event opened an alert');
  const row = page.locator(`table[data-live-alerts] tr[data-alert-id="${alertId}"]`);
  await row.waitFor({ timeout: 10_000 });
  t.pass('the alert’s row appears live above the timeline');
  t.match(await row.locator('.alert-title').textContent(), /^Critical: A person behind the counter/);
  t.equal(await row.locator('.alert-level .badge').textContent(), 'critical');
  await page.locator(`article.event .event-alert[data-alert-id="${alertId}"] .alert-state`).filter({ hasText: 'open' }).waitFor({ timeout: 5_000 });
  t.pass('the event says which alert it joined');

  // A second page on /alerts, to watch the acknowledgement arrive live
  const other = await context.newPage();
  await other.goto(`${cloud.url}/alerts`);
  await other.locator('#live').filter({ hasText: /^live$/ }).waitFor({ timeout: 10_000 });
  let otherNavigations = 0;
  other.on('framenavigated', (f) => {
    if (f === other.mainFrame()) otherNavigations++;
  });

  // Acknowledge with the button the script drew: a plain form POST, 303 back to /events
  const [ack] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === `/alerts/${alertId}/ack` && r.request().method() === 'POST'),
    row.locator('form.ack button').click(),
  ]);
  t.equal(ack.status(), 303, 'the acknowledge form answers 303');
  await page.waitForLoadState('load');
  t.equal(new URL(page.url()).pathname, '/events', 'and leads back to /events');
  t.match(await page.locator(`table[data-live-alerts] tr[data-alert-id="${alertId}"] .alert-ack`).textContent(), `acknowledged by ${DASHBOARD_USER}`, 'the page shows who acknowledged it');

  const [api] = (await listAlerts(cloud, 'state=open')).filter((a) => a.id === alertId);
  t.equal(api.acknowledgedBy, DASHBOARD_USER, 'the API agrees');
  t.type(api.acknowledgedAt, 'number');

  const otherRow = other.locator(`tr[data-alert-id="${alertId}"] .alert-ack`);
  await otherRow.filter({ hasText: `acknowledged by ${DASHBOARD_USER}` }).waitFor({ timeout: 10_000 });
  t.equal(otherNavigations, 0, 'the other page got it live, without reloading');
  t.equal(await other.locator(`tr[data-alert-id="${alertId}"] form.ack`).count(), 0, 'and its button is gone');

  // A phone: 390 px wide, nothing scrolls sideways (tables scroll inside themselves)
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, storageState: await context.storageState() });
  const small = await phone.newPage();
  for (const path of ['/', '/events', '/alerts', '/cameras', '/devices']) {
    await small.goto(`${cloud.url}${path}`);
    await small.waitForLoadState('load');
    t.equal(new URL(small.url()).pathname, path, `${path}: still logged in`);
    t.equal(await sideways(small), 0, `${path} at 390 px: the page does not scroll sideways`);
    if (path === '/alerts') {
      const box = await small.locator(`tr[data-alert-id="${alertId}"] .alert-ack`).boundingBox();
      t.ok(box && box.x >= 0 && box.x + box.width <= 390, `an alert row fits the screen: its acknowledgement at x ${box?.x}..${box ? box.x + box.width : '?'}`);
    }
  }
  // The check can fail: one element wider than the screen and the page scrolls
  await small.locator('body').evaluate((body) => {
    const b = body as unknown as { ownerDocument: { createElement(tag: string): { style: { width: string; height: string } } }; append(n: unknown): void };
    const wide = b.ownerDocument.createElement('div');
    wide.style.width = '1000px';
    wide.style.height = '1px';
    b.append(wide);
  });
  t.ok((await sideways(small)) > 0, 'a 1000 px element would make it scroll (the check sees it)');
  await phone.close();

  // The cloud restarts: the indicator says so, the browser reconnects by itself (Last-Event-ID)
  // and an event made after the restart still arrives without a reload.
  await cloud.close();
  await page.locator('#live').filter({ hasText: 'reconnecting…' }).waitFor({ timeout: 10_000 });
  t.pass('the cloud gone: "reconnecting…"');
  const again = await startCloud({ port: cloud.port, logLevel: 'silent', dataDir: cloud.dataDir, batchWindowS: 0 }, { analyser, detector: null });
  t.teardown(() => again.close());
  t.equal(again.url, cloud.url, 'back on the same address');
  await page.locator('#live').filter({ hasText: /^live$/ }).waitFor({ timeout: 15_000 });
  t.pass('reconnected: "live" again');
  const before = navigations;
  const third = await uploadFrame(again, token, await describeJpeg(await encode(await paste(scene, await person(200), 40, 120))), { camera: 'cam-a', capturedAt: Date.now() });
  await page.locator(`article.event[data-live="inserted"] img[src="/admin/v1/frames/${third}/image"]`).waitFor({ timeout: 15_000 });
  t.equal(navigations, before, 'the event after the restart arrives live too');

  t.same(errors, [], 'no script errors');
  const tookMs = Date.now() - started;
  t.ok(tookMs < 60_000, `the whole walk-through took ${tookMs} ms`);
});
