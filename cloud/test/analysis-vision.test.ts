import t, { type Test } from 'tap';
import type { EventView } from '../src/routes/events.js';
import { WorkerDetector, type ObjectDetector } from '../src/detect/object-detector.js';
import { OpenAiTestDouble } from './doubles/openai-double.js';
import { WebhookReceiver } from './doubles/webhook-receiver.js';
import { claimDevice, describeJpeg, eventually, fakeClock, http, startTestCloud, tempDir, uploadFrame, type FakeClock, type TestClock, type TestCloud } from './helpers.js';
import { encode, paste, patternScene, person, withNoise, type Raw } from './scenes.js';

// The pipeline with a vision model: an OpenAI-compatible server on loopback — the scripted test
// double (cloud/test/doubles/openai-double.ts), which can fail on purpose — behind the
// detector's gate, the retries, the circuit breaker and the durable jobs.

const SECRET = 'a-webhook-secret-of-some-length';
const NIGHT = Date.UTC(2026, 11, 6, 1, 0, 0);

const answer = (o: Partial<{ riskScore: number; level: string; summary: string }> = {}) => ({
  content: JSON.stringify({
    riskScore: o.riskScore ?? 85,
    level: o.level ?? 'critical',
    summary: o.summary ?? 'A person is inside the closed shop.',
    reasoning: 'The shop is closed and a person stands by the counter.',
    observations: ['one person', 'lights off'],
  }),
});

/** Moves the fake clock in steps until `p` settles (retries and breakers wait on that clock). */
async function drive<T>(clock: TestClock, p: Promise<T>, stepMs = 1_000, maxSteps = 600): Promise<T> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < maxSteps && !settled; i++) {
    await clock.advance(stepMs);
    await new Promise((r) => setTimeout(r, 5));
  }
  return p;
}

/**
 * `n` different frames of the test pattern: shifted along (each a large change), with a plain
 * box at a new place in each (a change, not large, nothing a detector names), or with a person.
 */
async function frames(n: number, kind: 'shift' | 'box' | 'person'): Promise<Buffer[]> {
  const scene = await patternScene();
  const walker = await person(200);
  const box = await encode({ width: 90, height: 90, data: Buffer.alloc(90 * 90 * 3, 0x40) });
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const shift = i * 3 * 160;
    const shifted: Raw = { ...scene, data: Buffer.concat([scene.data.subarray(shift), scene.data.subarray(0, shift)]) };
    const raw = kind === 'shift' ? shifted : kind === 'box' ? await paste(scene, box, 40 + (i % 5) * 110, 60 + (i % 2) * 150) : await paste(shifted, walker, 40 + (i % 4) * 130, 100);
    out.push(await encode(withNoise(raw, 4, i + 1)));
  }
  return out;
}

async function visionCloud(t: Test, o: { detector?: ObjectDetector; dataDir?: string; clock?: FakeClock; model?: OpenAiTestDouble; hook?: WebhookReceiver } = {}) {
  const model = o.model ?? (await OpenAiTestDouble.start(t));
  const cloud = await startTestCloud(
    t,
    {
      visionBaseUrl: model.baseUrl,
      visionModel: 'vision-test',
      batchWindowS: 0,
      ...(o.dataDir ? { dataDir: o.dataDir } : {}),
      ...(o.hook ? { webhookUrls: [o.hook.url], webhookSecret: SECRET } : {}),
    },
    o.clock ?? fakeClock(NIGHT),
    o.detector ? { detector: o.detector } : {},
  );
  return { model, cloud };
}

async function upload(cloud: TestCloud, token: string, jpegs: Buffer[], start = cloud.clock.now()): Promise<void> {
  for (const [i, bytes] of jpegs.entries()) await uploadFrame(cloud, token, await describeJpeg(bytes), { capturedAt: start + i * 30_000 });
}

async function events(cloud: TestCloud) {
  return (await http<EventView[]>(cloud.url, 'GET', '/admin/v1/events', { token: cloud.adminToken })).body;
}

t.test('a structured answer becomes the event; the request carries the frames and the context', async (t) => {
  const { model, cloud } = await visionCloud(t);
  model.script.push(answer());
  const { token } = await claimDevice(cloud);
  const camera = 'back-door';
  await uploadFrame(cloud, token, await describeJpeg((await frames(1, 'person'))[0]!), { camera, capturedAt: NIGHT });
  const cam = (await cloud.store.listCameras())[0]!;
  await http(cloud.url, 'PUT', `/admin/v1/cameras/${cam.id}/analysis`, { token: cloud.adminToken, json: { context: 'Back door of the bakery; nobody at night.' } });
  await drive(cloud.clock, cloud.analysis.runOnce());

  const e = (await events(cloud))[0]!;
  t.match(e, { source: 'vision', model: 'vision-test', level: 'critical', riskScore: 85, summary: 'A person is inside the closed shop.', offSpec: null, observations: ['one person', 'lights off'] });
  t.ok(e.alertId, 'critical: an alert');
  const req = model.requests.at(-1)!;
  const user = req.body.messages.find((m: { role: string }) => m.role === 'user');
  const images = user.content.filter((p: { type: string }) => p.type === 'image_url');
  t.equal(images.length, 1, 'the frame');
  t.match(images[0].image_url.url, /^data:image\/jpeg;base64,\/9j\//, 'as a JPEG data URI');
  t.match(JSON.stringify(user.content), /nobody at night/, 'the camera context');
  t.equal(req.body.response_format?.type, 'json_schema', 'a JSON schema answer is asked for');
});

t.test('an off-spec answer is kept and flagged, not dropped', async (t) => {
  const { model, cloud } = await visionCloud(t);
  model.script.push({ content: 'I think there is someone there, risk maybe high.' });
  const { token } = await claimDevice(cloud);
  await upload(cloud, token, await frames(1, 'shift'));
  await drive(cloud.clock, cloud.analysis.runOnce());
  const e = (await events(cloud))[0]!;
  t.ok(e, 'an event');
  t.equal(e.source, 'vision');
  t.ok(e.offSpec, 'flagged');
  t.equal(e.offSpec?.raw, 'I think there is someone there, risk maybe high.', 'the answer as it came');
  t.ok((e.offSpec?.problems.length ?? 0) > 0, 'with what was wrong');
});

t.test('the detector gates the model: an empty scene costs no call, a person does', async (t) => {
  const shared = await WorkerDetector.start();
  t.teardown(() => shared.close());
  const { model, cloud } = await visionCloud(t, { detector: { detect: (j, s) => shared.detect(j, s), close: async () => undefined } });
  model.fallback = answer({ level: 'high', riskScore: 60, summary: 'Someone by the door.' });
  const { token } = await claimDevice(cloud);
  const empty = await frames(3, 'box');
  await upload(cloud, token, [empty[0]!]);
  await drive(cloud.clock, cloud.analysis.runOnce());
  t.equal(model.requests.length, 1, "the camera's first frame is a large change: one call");
  await upload(cloud, token, empty.slice(1), cloud.clock.now() + 60_000);
  await drive(cloud.clock, cloud.analysis.runOnce());
  const seen = await cloud.store.analysis.counters();
  t.equal(seen.frames.batched, 3, 'the box moved: the frames were changes, analysed by the detector');
  t.equal(model.requests.length, 1, 'nothing in them the detector names: no call');
  await upload(cloud, token, await frames(1, 'person'), cloud.clock.now() + 120_000);
  await drive(cloud.clock, cloud.analysis.runOnce());
  t.equal(model.requests.length, 2, 'a person: a call');
  t.equal((await events(cloud))[0]!.summary, 'Someone by the door.');
});

t.test('the model fails: the breaker opens, jobs wait, none is lost; it recovers and every batch becomes one event', async (t) => {
  const { model, cloud } = await visionCloud(t);
  model.fallback = { status: 500, body: '{"error":{"message":"overloaded"}}' };
  const { token } = await claimDevice(cloud);
  await upload(cloud, token, await frames(6, 'person'));
  await drive(cloud.clock, cloud.analysis.runOnce());

  t.equal(cloud.analyser!.status().state, 'open', 'the breaker opened');
  const waiting = await cloud.store.analysis.counters();
  t.equal(waiting.events, 0, 'no event yet');
  t.equal(waiting.jobs.batch.pending, 6, 'all 6 batch jobs wait');
  t.equal(waiting.jobs.batch.failed, 0, 'none failed');
  const calls = model.requests.length;
  t.ok(calls >= 5 && calls <= 8, `the breaker stopped the calls (${calls} made)`);

  await cloud.clock.advance(30_000);
  await cloud.analysis.runOnce();
  t.equal(model.requests.length, calls, 'open: no call before the probe time');

  model.fallback = answer();
  await cloud.clock.advance(31_000);
  await drive(cloud.clock, cloud.analysis.runOnce());
  // Jobs parked by a counted failure come back on the backoff ladder; drive until all are done.
  await drive(
    cloud.clock,
    eventually(async () => {
      await cloud.analysis.runOnce();
      return (await cloud.store.analysis.counters()).events === 6;
    }, 'all six events', 20_000),
    5_000,
  );
  t.equal(cloud.analyser!.status().state, 'closed', 'closed again');
  const all = await events(cloud);
  t.equal(all.length, 6, 'six events');
  t.equal(new Set(all.map((e) => e.batchId)).size, 6, 'one per batch');
  const done = await cloud.store.analysis.counters();
  t.same(done.jobs.batch, { pending: 0, running: 0, done: 6, failed: 0 });
  t.equal((await cloud.store.alerts.openAlerts()).filter((a) => a.kind === 'scene').length, 1, 'one incident, one alert');
});

t.test('a restart mid-analysis loses no job and makes no second event', async (t) => {
  const dataDir = tempDir(t);
  const model = await OpenAiTestDouble.start(t);
  model.fallback = { hang: true };
  const clock = fakeClock(NIGHT);
  const a = await visionCloud(t, { dataDir, clock, model });
  const { token } = await claimDevice(a.cloud);
  await upload(a.cloud, token, await frames(2, 'person'));
  await eventually(() => model.inFlight >= 1, 'an analysis under way');
  await a.cloud.close();

  model.fallback = answer();
  const b = await visionCloud(t, { dataDir, clock, model });
  await drive(clock, b.cloud.analysis.runOnce());
  const early = await b.cloud.store.analysis.counters();
  t.ok(early.jobs.batch.running + early.jobs.batch.pending >= 1, 'the interrupted job waits for its lease to run out');
  await clock.advance(61_000);
  await drive(clock, b.cloud.analysis.runOnce());
  const all = await events(b.cloud);
  t.equal(all.length, 2, 'both batches became events');
  t.equal(new Set(all.map((e) => e.batchId)).size, 2, 'one each');
  t.same((await b.cloud.store.analysis.counters()).jobs.batch, { pending: 0, running: 0, done: 2, failed: 0 });
  t.equal((await b.cloud.store.alerts.openAlerts()).filter((x) => x.kind === 'scene').length, 1, 'one alert');
});

t.test('quiet hours mute a high alert; a critical event escalates it and is sent', async (t) => {
  const hook = await WebhookReceiver.start(t);
  const { model, cloud } = await visionCloud(t, { hook });
  const { token } = await claimDevice(cloud);
  const siteId = (await cloud.store.listSites())[0]!.id;
  await http(cloud.url, 'PUT', `/admin/v1/sites/${siteId}/analysis`, { token: cloud.adminToken, json: { timezone: 'Europe/Paris', quietHours: '00:00-06:00' } });
  const [one, two] = await frames(2, 'person');
  model.script.push(answer({ level: 'high', riskScore: 65, summary: 'Someone at the door.' }));
  await upload(cloud, token, [one!]);
  await drive(cloud.clock, cloud.analysis.runOnce());
  const high = (await events(cloud))[0]!;
  const alert = (await cloud.store.alerts.getAlert(high.alertId ?? ''))!;
  t.match(alert, { level: 'high', state: 'open', detail: { muted: /quiet hours 00:00-06:00/ } });
  t.equal((await cloud.store.alerts.notificationsFor(alert.id)).length, 0, 'nothing sent in quiet hours');

  model.script.push(answer({ level: 'critical', riskScore: 92, summary: 'Someone forcing the door.' }));
  await upload(cloud, token, [two!], cloud.clock.now() + 30_000);
  await drive(cloud.clock, cloud.analysis.runOnce());
  const after = (await cloud.store.alerts.getAlert(alert.id))!;
  t.match(after, { level: 'critical', eventCount: 2 }, 'the same alert, escalated');
  await eventually(() => hook.events('alert.escalated').length === 1, 'the escalation is sent');
  t.equal(hook.events('alert.opened').length, 0);
});
