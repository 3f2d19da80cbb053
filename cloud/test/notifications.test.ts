import t from 'tap';
import { claimDevice, eventually, heartbeatBody, http, listAlerts, sendHeartbeat, startTestCloud, type TestCloud } from './helpers.js';
import { verifySignature, WebhookReceiver } from './doubles/webhook-receiver.js';

const SECRET = 'webhook-secret-for-tests';

/** Opens a needs_human alert through a real heartbeat; returns its id. */
async function openAlert(cloud: TestCloud, token: string): Promise<string> {
  const res = await sendHeartbeat(cloud, token, heartbeatBody({ verdict: 'needs_human', verdictReason: 'disk is read-only' }));
  if (res.status !== 200) throw new Error(`heartbeat: ${res.status}`);
  const [alert] = await listAlerts(cloud, 'state=open');
  return alert.id;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read bodies loosely
async function notifications(cloud: TestCloud, alertId: string): Promise<any[]> {
  return (await http(cloud.url, 'GET', `/admin/v1/alerts/${alertId}`, { token: cloud.adminToken })).body.notifications;
}

t.test('500 then 200: delivered on the second attempt, after the first backoff step; signed', async (t) => {
  const hook = await WebhookReceiver.start(t);
  hook.script.push(500);
  const cloud = await startTestCloud(t, { webhookUrls: [hook.url], webhookSecret: SECRET });
  const dev = await claimDevice(cloud);
  const alertId = await openAlert(cloud, dev.token);

  await eventually(() => hook.received.length === 1, 'first attempt');
  const [first] = await eventually(async () => {
    const n = await notifications(cloud, alertId);
    return n[0]?.attempts === 1 && n;
  }, 'first attempt recorded');
  t.match(first, { event: 'alert.opened', state: 'pending', attempts: 1, lastError: /^WEBHOOK_SERVER_ERROR: HTTP 500/ });
  t.equal(first.nextAttemptAt, cloud.clock.now() + 10_000, 'retried after the first step of the ladder (10 s)');
  t.equal(first.target, `http://127.0.0.1:${hook.port}`, 'the target is shown by origin only');

  await cloud.clock.advance(9_000);
  await cloud.notifications.deliverDue();
  t.equal(hook.received.length, 1, 'not before its time');
  await cloud.clock.advance(1_000);
  await eventually(() => hook.received.length === 2, 'second attempt');
  const [done] = await eventually(async () => {
    const n = await notifications(cloud, alertId);
    return n[0]?.state === 'delivered' && n;
  }, 'delivered');
  t.match(done, { attempts: 2, deliveredAt: cloud.clock.now(), lastError: null });

  const [a, b] = hook.received;
  t.same(a!.raw, b!.raw, 'a retry sends the same body');
  t.equal(b!.headers['x-vigil-delivery'], b!.json.id);
  t.equal(b!.headers['x-vigil-event'], 'alert.opened');
  t.equal(b!.headers['content-type'], 'application/json');
  t.ok(verifySignature(b!, SECRET), 'the signature verifies with the shared secret');
  t.notOk(verifySignature(b!, 'another-secret-entirely'), 'and not with another');
  t.match(b!.json, {
    event: 'alert.opened',
    alert: { id: alertId, kind: 'needs_human', state: 'open', deviceId: dev.deviceId, site: 'Cafe Lune', detail: { verdictReason: 'disk is read-only' } },
  });
});

t.test('429 waits for its Retry-After; retries stop at maxAttempts', async (t) => {
  const hook = await WebhookReceiver.start(t);
  hook.script.push({ status: 429, headers: { 'retry-after': '120' } }, 503, 503, 503, 503);
  const cloud = await startTestCloud(t, { webhookUrls: [hook.url], webhookSecret: SECRET, webhookMaxAttempts: 3 });
  const dev = await claimDevice(cloud);
  const alertId = await openAlert(cloud, dev.token);
  const [n1] = await eventually(async () => {
    const n = await notifications(cloud, alertId);
    return n[0]?.attempts === 1 && n;
  }, 'first attempt');
  t.match(n1, { lastError: /^WEBHOOK_RATE_LIMITED/, nextAttemptAt: cloud.clock.now() + 120_000 });

  await cloud.clock.advance(120_000);
  await eventually(async () => (await notifications(cloud, alertId))[0]?.attempts === 2, 'second attempt');
  const [n2] = await notifications(cloud, alertId);
  t.equal(n2.nextAttemptAt, cloud.clock.now() + 30_000, 'the ladder counts attempts: the second retry waits 30 s');
  await cloud.clock.advance(30_000);
  const [n3] = await eventually(async () => {
    const n = await notifications(cloud, alertId);
    return n[0]?.state === 'failed' && n;
  }, 'given up');
  t.match(n3, { attempts: 3, failedAt: cloud.clock.now(), lastError: /^WEBHOOK_SERVER_ERROR: HTTP 503/ });
  await cloud.clock.advance(3_600_000);
  await cloud.notifications.deliverDue();
  t.equal(hook.received.filter((r) => r.json.alert.id === alertId).length, 3, 'no attempt after giving up');
  t.equal((await notifications(cloud, alertId))[0].attempts, 3);
});

t.test('a permanent 400 fails at once and is not retried', async (t) => {
  const hook = await WebhookReceiver.start(t);
  hook.script.push(400);
  const cloud = await startTestCloud(t, { webhookUrls: [hook.url], webhookSecret: SECRET });
  const dev = await claimDevice(cloud);
  const alertId = await openAlert(cloud, dev.token);
  const [n] = await eventually(async () => {
    const list = await notifications(cloud, alertId);
    return list[0]?.state === 'failed' && list;
  }, 'failed');
  t.match(n, { attempts: 1, lastError: /^WEBHOOK_REJECTED: HTTP 400/ });
  for (let i = 0; i < 5; i++) {
    await cloud.clock.advance(3_600_000);
    await cloud.notifications.deliverDue();
  }
  // (Hours without heartbeats open a device_silent alert too: count only this one's.)
  t.equal(hook.received.filter((r) => r.json.alert.id === alertId).length, 1);
  t.equal((await notifications(cloud, alertId))[0].attempts, 1);
});

t.test('a receiver that is down: retried with growing backoff, delivered when it is back', async (t) => {
  const hook = await WebhookReceiver.start(t);
  await hook.close(); // its port is now refused
  const cloud = await startTestCloud(t, { webhookUrls: [hook.url], webhookSecret: SECRET });
  const dev = await claimDevice(cloud);
  const alertId = await openAlert(cloud, dev.token);

  const delays: number[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const [n] = await eventually(async () => {
      const list = await notifications(cloud, alertId);
      return list[0]?.attempts === attempt && list;
    }, `attempt ${attempt}`);
    t.match(n, { state: 'pending', lastError: /^WEBHOOK_UNREACHABLE/ });
    delays.push(n.nextAttemptAt - cloud.clock.now());
    if (attempt < 3) await cloud.clock.advance(n.nextAttemptAt - cloud.clock.now());
  }
  t.same(delays, [10_000, 30_000, 60_000], 'the backoff grows');

  await hook.listen();
  await cloud.clock.advance(60_000);
  await eventually(() => hook.received.length === 1, 'delivered once the receiver is back');
  await eventually(async () => (await notifications(cloud, alertId))[0]?.state === 'delivered', 'recorded as delivered');
});

t.test('notifications survive a restart: a pending row is delivered by the next process', async (t) => {
  const hook = await WebhookReceiver.start(t);
  hook.script.push(503);
  const config = { webhookUrls: [hook.url], webhookSecret: SECRET };
  const first = await startTestCloud(t, config);
  const dev = await claimDevice(first);
  const alertId = await openAlert(first, dev.token);
  await eventually(async () => (await notifications(first, alertId))[0]?.attempts === 1, 'first attempt');
  await first.close();
  t.equal(hook.received.length, 1);

  const second = await startTestCloud(t, { ...config, dataDir: first.dataDir });
  t.equal((await notifications(second, alertId))[0].state, 'pending', 'still pending after the restart');
  await second.clock.advance(10_000);
  await eventually(() => hook.received.length === 2, 'delivered after the restart');
  t.equal(hook.received[1]!.json.id, hook.received[0]!.json.id, 'the same notification');
  await eventually(async () => (await notifications(second, alertId))[0]?.state === 'delivered', 'recorded as delivered');
});

t.test('each change is one notification per webhook; a removed webhook gets nothing more', async (t) => {
  const a = await WebhookReceiver.start(t);
  const b = await WebhookReceiver.start(t);
  b.script.push(503);
  const first = await startTestCloud(t, { webhookUrls: [a.url, b.url], webhookSecret: SECRET });
  const dev = await claimDevice(first);
  const alertId = await openAlert(first, dev.token);
  await eventually(async () => (await notifications(first, alertId)).every((n: { attempts: number }) => n.attempts === 1), 'both attempted');
  t.equal(a.received.length, 1);
  t.equal(b.received.length, 1);
  t.not(a.received[0]!.json.id, b.received[0]!.json.id, 'one notification per target');
  await first.close();

  // b is taken out of the configuration: its pending row is failed, not sent.
  const second = await startTestCloud(t, { webhookUrls: [a.url], webhookSecret: SECRET, dataDir: first.dataDir });
  await second.clock.advance(10_000);
  await eventually(async () => (await notifications(second, alertId)).some((n: { state: string }) => n.state === 'failed'), 'the removed target failed');
  const list = await notifications(second, alertId);
  t.match(list.find((n: { state: string }) => n.state === 'failed'), { lastError: /^WEBHOOK_NOT_CONFIGURED/ });
  t.equal(b.received.length, 1);
});

t.test('without webhooks, alerts are still recorded; a secret is required with them', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  const alertId = await openAlert(cloud, dev.token);
  t.same(await notifications(cloud, alertId), []);
  await t.rejects(startTestCloud(t, { webhookUrls: ['http://127.0.0.1:9/x'] }), { code: 'CONFIG_INVALID', message: /webhookSecret: required/ });
});
