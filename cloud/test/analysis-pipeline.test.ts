import t, { type Test } from 'tap';
import type { EventView } from '../src/routes/events.js';
import type { AlertRecord } from '../src/store/alert-types.js';
import { WorkerDetector, type ObjectDetector } from '../src/detect/object-detector.js';
import { claimDevice, describeJpeg, eventually, fakeClock, http, startTestCloud, uploadFrame, type TestCloud } from './helpers.js';
import { verifySignature, WebhookReceiver } from './doubles/webhook-receiver.js';
import { encode, paste, patternScene, person, withNoise } from './scenes.js';

// The pipeline end to end on the real cloud with the real object detector and no vision model:
// frames uploaded as a device does → intake → batch → detector → event → scene alert →
// webhook, and the alert's life (re-sent until acknowledged, closed when quiet).

const SECRET = 'a-webhook-secret-of-some-length';
/** 02:00 in Paris (UTC+1 in December). */
const NIGHT = Date.UTC(2026, 11, 6, 1, 0, 0);
/** 14:00 in Paris. */
const DAY = Date.UTC(2026, 11, 6, 13, 0, 0);

let shared: WorkerDetector | undefined;
t.before(async () => {
  shared = await WorkerDetector.start();
});
t.teardown(() => shared?.close());
/** The one detector of this file, which a cloud's close() must not stop. */
const detector = (): ObjectDetector => ({ detect: (jpeg, signal) => shared!.detect(jpeg, signal), close: async () => undefined });

async function shopAt(t: Test, start: number, hook?: WebhookReceiver): Promise<{ cloud: TestCloud; token: string; siteId: string }> {
  const cloud = await startTestCloud(t, hook ? { webhookUrls: [hook.url], webhookSecret: SECRET } : {}, fakeClock(start), { detector: detector() });
  const { token } = await claimDevice(cloud);
  const siteId = (await cloud.store.listSites())[0]!.id;
  const put = await http(cloud.url, 'PUT', `/admin/v1/sites/${siteId}/analysis`, { token: cloud.adminToken, json: { timezone: 'Europe/Paris', closedHours: '22:00-07:00' } });
  t.equal(put.status, 200, 'the site closes at night');
  return { cloud, token, siteId };
}

/** Frames 10 s apart: the empty scene, then a person crossing it in `steps` frames. */
async function personWalksIn(cloud: TestCloud, token: string, steps: number): Promise<void> {
  const scene = await patternScene();
  const walker = await person(200);
  const start = cloud.clock.now();
  for (let i = 0; i <= steps; i++) {
    const raw = i === 0 ? scene : await paste(scene, walker, 60 + i * 120, 100);
    await uploadFrame(cloud, token, await describeJpeg(await encode(withNoise(raw, 4, i + 1))), { capturedAt: start + i * 10_000 });
    await cloud.clock.advance(10_000);
    await cloud.analysis.runOnce();
  }
}

async function events(cloud: TestCloud) {
  const res = await http<EventView[]>(cloud.url, 'GET', '/admin/v1/events', { token: cloud.adminToken });
  return res.body;
}

t.test('a person at 02:00 in a closed shop: a critical event, an alert, a signed webhook', async (t) => {
  const hook = await WebhookReceiver.start(t);
  const { cloud, token } = await shopAt(t, NIGHT, hook);
  await personWalksIn(cloud, token, 3);
  t.same(await events(cloud), [], 'the batch is still open (30 s idle, 90 s window)');
  await cloud.clock.advance(30_000);
  await cloud.analysis.runOnce();

  const [first, ...more] = await events(cloud);
  const e = first!;
  t.equal(more.length, 0, 'one batch, one event');
  t.match(e, { level: 'critical', riskScore: 90, source: 'detector', model: null, summary: /person .*closed/i });
  t.equal(e.frames.length, 4, 'the empty frame and the 3 with the person');
  t.match(e.detections[0], { label: 'person', frames: 3 });
  t.match(e.reasoning, /02:\d\d \(Sunday\), Europe\/Paris/);
  t.ok(e.alertId, 'it raised an alert');

  const alert = (await http<AlertRecord>(cloud.url, 'GET', `/admin/v1/alerts/${e.alertId}`, { token: cloud.adminToken })).body;
  t.match(alert, { kind: 'scene', level: 'critical', state: 'open', eventCount: 1, acknowledgedAt: null });

  await eventually(() => hook.events('alert.opened').length === 1, 'the webhook');
  const w = hook.received[0]!;
  t.ok(verifySignature(w, SECRET), 'HMAC-signed');
  t.equal(w.headers['idempotency-key'], w.json.id, 'with an idempotency key, the notification id');
  t.match(w.json.alert, { id: e.alertId, level: 'critical', title: /^Critical: / });

  // Unacknowledged, it is sent again every renotifyS (300 s) ...
  await cloud.clock.advance(300_000);
  await cloud.analysis.runOnce();
  await eventually(() => hook.events('alert.renotified').length === 1, 're-sent after 5 min');
  await cloud.clock.advance(120_000);
  await cloud.analysis.runOnce();
  t.equal(hook.events('alert.renotified').length, 1, 'not before the next 5 min');
  // ... until someone acknowledges it; then it closes once quiet for the cooldown (600 s).
  const ack = await http<AlertRecord>(cloud.url, 'POST', `/admin/v1/alerts/${e.alertId}/ack`, { token: cloud.adminToken });
  t.match(ack.body, { acknowledgedBy: 'admin-token', state: 'open' });
  await eventually(() => hook.events('alert.acknowledged').length === 1, 'acknowledged');
  await cloud.clock.advance(600_000);
  await cloud.analysis.runOnce();
  t.equal(hook.events('alert.renotified').length, 1, 'no more re-sending once acknowledged');
  const closed = (await http<AlertRecord>(cloud.url, 'GET', `/admin/v1/alerts/${e.alertId}`, { token: cloud.adminToken })).body;
  t.match(closed, { state: 'closed', resolution: /acknowledged by admin-token; quiet for 10 min/ });
});

t.test('the same at 14:00, open hours: a low event, no alert', async (t) => {
  const { cloud, token } = await shopAt(t, DAY);
  await personWalksIn(cloud, token, 2);
  await cloud.clock.advance(30_000);
  await cloud.analysis.runOnce();
  const e = (await events(cloud))[0]!;
  t.match(e, { level: 'low', source: 'detector', summary: /person .*opening hours/i, alertId: null });
  t.same((await cloud.store.alerts.openAlerts()).filter((a) => a.kind === 'scene'), []);
});

t.test('an empty scene changing: analysed, nothing found, no event', async (t) => {
  const { cloud, token } = await shopAt(t, NIGHT);
  const scene = await patternScene();
  const start = cloud.clock.now();
  // A big change with nothing in it: the pattern, then the pattern shifted.
  for (let i = 0; i < 3; i++) {
    const shifted = { ...scene, data: Buffer.concat([scene.data.subarray(i * 3 * 200), scene.data.subarray(0, i * 3 * 200)]) };
    await uploadFrame(cloud, token, await describeJpeg(await encode(shifted)), { capturedAt: start + i * 10_000 });
  }
  await cloud.analysis.runOnce();
  await cloud.clock.advance(60_000);
  await cloud.analysis.runOnce();
  const counters = await cloud.store.analysis.counters();
  t.equal(counters.batches.done, 1, 'analysed');
  t.equal(counters.events, 0, 'no event');
  t.same(await events(cloud), []);
});

t.test('quiet hours: a high event raises an alert but sends nothing; a critical one is always sent', async (t) => {
  const hook = await WebhookReceiver.start(t);
  const { cloud, token, siteId } = await shopAt(t, NIGHT, hook);
  // Vehicles while closed are medium; with minLevel medium that is an alert — in quiet hours.
  await http(cloud.url, 'PUT', `/admin/v1/sites/${siteId}/analysis`, {
    token: cloud.adminToken,
    json: { timezone: 'Europe/Paris', closedHours: '22:00-07:00', quietHours: '00:00-06:00', minLevel: 'medium' },
  });
  await personWalksIn(cloud, token, 1);
  await cloud.clock.advance(30_000);
  await cloud.analysis.runOnce();
  const e = (await events(cloud))[0]!;
  t.equal(e.level, 'critical');
  await eventually(() => hook.events('alert.opened').length === 1, 'critical: sent in quiet hours');
});
