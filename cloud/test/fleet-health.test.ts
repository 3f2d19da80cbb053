import t from 'tap';
import type { QueueHealth } from '@vigil/protocol';
import { claimDevice, eventually, heartbeatBody, listAlerts, makeJpeg, sendHeartbeat, startTestCloud, uploadFrame } from './helpers.js';
import { DEFAULT_DIAGNOSIS, OpenAiTestDouble } from './doubles/openai-double.js';
import { WebhookReceiver } from './doubles/webhook-receiver.js';

const SECRET = 'webhook-secret-for-tests';
const MINUTE = 60_000;

const sickReport = () =>
  heartbeatBody({
    verdict: 'needs_human',
    verdictReason: 'rolled back twice; the camera worker keeps crashing',
    problems: [{ check: 'camera', part: 'cam-a', reason: 'no good capture for 900 s' }],
    escalation: [
      { at: 1_700_000_000_000, step: 1, part: 'camera:cam-a', reason: 'restart' },
      { at: 1_700_000_100_000, step: 3, part: null, reason: 'reboot' },
      { at: 1_700_000_200_000, step: 5, part: null, reason: 'out of options' },
    ],
    logs: ['{"level":50,"msg":"ffmpeg exited 1: Connection refused"}', '{"level":40,"msg":"escalating to step 5"}'],
  });

t.test('needs_human: an alert with the report and log lines; triage writes a diagnosis; nominal closes it', async (t) => {
  const model = await OpenAiTestDouble.start(t);
  const hook = await WebhookReceiver.start(t);
  const cloud = await startTestCloud(t, {
    triageBaseUrl: model.baseUrl,
    triageModel: 'test-model',
    triageApiKey: 'sk-test-key',
    webhookUrls: [hook.url],
    webhookSecret: SECRET,
  });
  const dev = await claimDevice(cloud, 'hw-sick');
  const report = sickReport();
  t.equal((await sendHeartbeat(cloud, dev.token, report)).status, 200);

  const [alert] = await listAlerts(cloud, 'state=open');
  t.match(alert, { kind: 'needs_human', deviceId: dev.deviceId, cameraId: null, title: /hw-sick needs a technician: rolled back twice/ });
  t.same(alert.detail.logs, report.logs);
  t.same(alert.detail.problems, report.problems);
  t.same(alert.detail.escalation, report.escalation);
  t.equal(alert.detail.verdictReason, report.verdictReason);

  await cloud.triage!.idle();
  t.equal(model.requests.length, 1, 'one call to the model');
  const call = model.requests[0]!;
  t.equal(call.headers.authorization, 'Bearer sk-test-key');
  t.equal(call.body.model, 'test-model');
  t.match(call.body.messages[0], { role: 'system', content: /advise/ });
  t.match(call.body.messages[1].content, /ffmpeg exited 1: Connection refused/, 'the log lines reach the model');
  t.match(call.body.messages[1].content, /rolled back twice/);
  const [diagnosed] = await listAlerts(cloud, 'state=open');
  t.equal(diagnosed.diagnosis, DEFAULT_DIAGNOSIS);
  await eventually(() => hook.events('alert.diagnosed').length === 1, 'diagnosed webhook');
  t.equal(hook.events('alert.diagnosed')[0].alert.diagnosis, DEFAULT_DIAGNOSIS);

  // Still needs a human: the same alert, no second triage.
  await sendHeartbeat(cloud, dev.token, report);
  await cloud.triage!.idle();
  t.equal((await listAlerts(cloud)).length, 1);
  t.equal(model.requests.length, 1);

  await sendHeartbeat(cloud, dev.token, heartbeatBody({ verdict: 'self_healed', verdictReason: 'restarted the camera worker' }));
  t.match(await listAlerts(cloud), [{ id: alert.id, state: 'closed', resolution: 'the verdict is now self_healed', diagnosis: DEFAULT_DIAGNOSIS }]);
});

t.test('a failing or slow model leaves the alert intact, without a diagnosis', async (t) => {
  const model = await OpenAiTestDouble.start(t);
  model.script.push({ status: 500, body: '{"error":{"message":"overloaded"}}' }, { content: 'too late', delayMs: 1_500 });
  const cloud = await startTestCloud(t, { triageBaseUrl: model.baseUrl, triageModel: 'test-model', triageTimeoutS: 1 });
  const a = await claimDevice(cloud, 'hw-a');
  const b = await claimDevice(cloud, 'hw-b');
  await sendHeartbeat(cloud, a.token, sickReport());
  await sendHeartbeat(cloud, b.token, sickReport());
  await cloud.triage!.idle();
  t.equal(model.requests.length, 2, 'both were asked');
  const alerts = await listAlerts(cloud, 'state=open');
  t.equal(alerts.length, 2);
  for (const x of alerts) t.match(x, { kind: 'needs_human', diagnosis: null, detail: { logs: sickReport().logs } });
});

t.test('without a model there is no triage', async (t) => {
  const cloud = await startTestCloud(t);
  t.equal(cloud.triage, undefined);
  await t.rejects(startTestCloud(t, { triageBaseUrl: 'http://127.0.0.1:9/v1' }), { code: 'CONFIG_INVALID', message: /triageModel: triage needs both/ });
});

t.test('backlog growing over the last heartbeats → alert; shrinking → closed', async (t) => {
  const cloud = await startTestCloud(t, { backlogHeartbeats: 3, backlogMinAgeS: 120 });
  const dev = await claimDevice(cloud);
  const beat = (compressed: number, original: number, oldestMs: number | null) => {
    const queue: QueueHealth[] = [
      { camera: 'cam-a', variant: 'compressed', depth: compressed, oldestAgeMs: oldestMs },
      { camera: 'cam-a', variant: 'original', depth: original, oldestAgeMs: oldestMs },
    ];
    // No cameras: frames are not what this test is about.
    return sendHeartbeat(cloud, dev.token, heartbeatBody({ cameras: [], queue }));
  };
  const step = async (c: number, o: number, oldest: number | null) => {
    await cloud.clock.advance(MINUTE);
    t.equal((await beat(c, o, oldest)).status, 200);
    return listAlerts(cloud, 'state=all');
  };

  t.same(await step(2, 2, 60_000), []);
  t.same(await step(4, 3, 120_000), []);
  // Growing over 3 heartbeats, but its oldest capture is young: a burst, not a backlog.
  t.same(await step(6, 4, 60_000), [], 'young backlog');
  const [open] = await step(8, 5, 180_000);
  t.match(open, { kind: 'backlog_growing', state: 'open', title: /13 queued, oldest 3 min/, detail: { variants: ['compressed', 'original'] } });
  t.same(
    open.detail.depths.map((d: { compressed: number }) => d.compressed),
    [4, 6, 8],
  );

  t.equal((await step(8, 6, 240_000)).length, 1, 'still growing (originals): one alert');
  t.match(await step(8, 6, 300_000), [{ state: 'open' }], 'stuck is not recovered');
  t.match(await step(9, 2, 300_000), [{ state: 'open' }], 'originals evicted while compressed grows: not shrinking');
  t.match(await step(5, 2, 200_000), [{ id: open.id, state: 'closed', resolution: 'the backlog is shrinking' }]);
});

t.test('camera_offline: reported failing, or no frames while the device heartbeats; closes on recovery', async (t) => {
  const cloud = await startTestCloud(t, { cameraSilentS: 300, deviceSilentS: 600 });
  const dev = await claimDevice(cloud, 'hw-cams');
  const cam = (state: 'ok' | 'failing' | 'stopped', lastError: string | null = null) => ({
    camera: 'cam-a',
    name: 'Front door',
    state,
    lastCaptureAt: null,
    capturesOk: 0,
    failures: state === 'ok' ? 0 : 4,
    lastError,
  });

  await sendHeartbeat(cloud, dev.token, heartbeatBody({ cameras: [cam('failing', 'CAPTURE_TIMEOUT: no frame within 120 s')] }));
  const [reported] = await listAlerts(cloud, 'state=open');
  t.match(reported, {
    kind: 'camera_offline',
    cameraKey: 'cam-a',
    cameraName: 'Front door',
    title: /Camera Front door on hw-cams is failing: CAPTURE_TIMEOUT/,
    detail: { reason: 'reported', state: 'failing', failures: 4 },
  });

  await cloud.clock.advance(MINUTE);
  await sendHeartbeat(cloud, dev.token, heartbeatBody({ cameras: [cam('ok')] }));
  t.match(await listAlerts(cloud), [{ id: reported.id, state: 'closed' }], 'reported ok, and it is new enough not to be missed yet');

  // Heartbeats keep coming, the camera reports ok, yet no frame arrives (first seen 5 min ago).
  for (let i = 0; i < 4; i++) {
    await cloud.clock.advance(MINUTE);
    await sendHeartbeat(cloud, dev.token, heartbeatBody({ cameras: [cam('ok')] }));
  }
  t.same(await listAlerts(cloud, 'state=open'), [], 'five minutes: not yet');
  await cloud.clock.advance(MINUTE);
  await cloud.fleet.sweep();
  const [silent] = await listAlerts(cloud, 'state=open');
  t.match(silent, { kind: 'camera_offline', title: /No frames from camera Front door on hw-cams for 6 min/, detail: { reason: 'no_frames', lastFrameAt: null } });

  await uploadFrame(cloud, dev.token, await makeJpeg(1), { camera: 'cam-a', capturedAt: 5_000 });
  t.match(await listAlerts(cloud, 'state=all'), [{ id: silent.id, state: 'closed', resolution: 'the camera reports ok and its frames arrive' }, { state: 'closed' }]);

  // A device gone silent: its cameras are not judged on a stale report.
  await cloud.clock.advance(10 * MINUTE);
  await cloud.fleet.sweep();
  t.same(
    (await listAlerts(cloud, 'state=open')).map((a) => a.kind),
    ['device_silent'],
  );
});
