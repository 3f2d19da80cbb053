import t from 'tap';
import { claimDevice, eventually, heartbeatBody, http, listAlerts, sendHeartbeat, startTestCloud } from './helpers.js';
import { verifySignature, WebhookReceiver } from './doubles/webhook-receiver.js';

const SECRET = 'webhook-secret-for-tests';

t.test('a device that stops heartbeating: device_silent opens after the threshold, closes when heartbeats return', async (t) => {
  const hook = await WebhookReceiver.start(t);
  const cloud = await startTestCloud(t, { webhookUrls: [hook.url], webhookSecret: SECRET, deviceSilentS: 300, fleetSweepIntervalS: 30 });
  const dev = await claimDevice(cloud, 'hw-quiet');
  // No cameras: this test is about the device alone (a camera without frames is another alert).
  const beat = heartbeatBody({ cameras: [] });
  t.equal((await sendHeartbeat(cloud, dev.token, beat)).status, 200);

  await cloud.clock.advance(300_000);
  t.same(await cloud.fleet.sweep(), { devices: 1, opened: 0, closed: 0 }, 'exactly at the threshold: not yet');
  t.same(await listAlerts(cloud), []);

  // One more sweep interval: the sweep loop (asleep on the fake clock) wakes and finds it.
  await cloud.clock.advance(30_000);
  const [opened] = await eventually(() => hook.events('alert.opened').length === 1 && hook.events('alert.opened'), 'opened webhook');
  t.match(opened, {
    event: 'alert.opened',
    at: cloud.clock.now(),
    alert: { kind: 'device_silent', state: 'open', deviceId: dev.deviceId, cameraId: null, title: /No heartbeat from hw-quiet \(Cafe Lune\) for 5 min/ },
  });
  t.match(opened.alert.detail, { silentForMs: 330_000, thresholdMs: 300_000 });
  t.ok(verifySignature(hook.received[0]!, SECRET));

  // More sweeps do not open it again.
  await cloud.clock.advance(600_000);
  await cloud.fleet.sweep();
  t.equal((await listAlerts(cloud, 'state=open')).length, 1);

  t.equal((await sendHeartbeat(cloud, dev.token, beat)).status, 200);
  const [closed] = await eventually(() => hook.events('alert.closed').length === 1 && hook.events('alert.closed'), 'closed webhook');
  t.match(closed.alert, { id: opened.alert.id, state: 'closed', closedAt: cloud.clock.now(), resolution: 'heartbeat received' });
  t.same(await listAlerts(cloud, 'state=open'), []);
  t.equal(hook.events('alert.opened').length, 1, 'opened once');
});

t.test('silence counts from the claim for a device that never heartbeats, and not from before the cloud started', async (t) => {
  const first = await startTestCloud(t, { deviceSilentS: 300 });
  const dev = await claimDevice(first);
  await first.clock.advance(200_000);
  await first.fleet.sweep();
  t.same(await listAlerts(first), [], 'claimed 200 s ago: not silent');
  await first.close();

  // The cloud was down; it comes back "an hour later". The device had no way to reach it.
  const clock = (await import('./helpers.js')).fakeClock(first.clock.now() + 3_600_000);
  const second = await startTestCloud(t, { deviceSilentS: 300, dataDir: first.dataDir }, clock);
  await second.fleet.sweep();
  t.same(await listAlerts(second), [], 'no alert for the time the cloud itself was away');
  await second.clock.advance(301_000);
  await second.fleet.sweep();
  t.match(await listAlerts(second, 'state=open'), [{ kind: 'device_silent', deviceId: dev.deviceId, detail: { lastHeartbeatAt: null } }]);
});

t.test('a revoked device gets no new alerts and its open ones close', async (t) => {
  const hook = await WebhookReceiver.start(t);
  const cloud = await startTestCloud(t, { webhookUrls: [hook.url], webhookSecret: SECRET, deviceSilentS: 300 });
  const a = await claimDevice(cloud, 'hw-a');
  const b = await claimDevice(cloud, 'hw-b');
  await sendHeartbeat(cloud, a.token, heartbeatBody({ verdict: 'needs_human', verdictReason: 'sd card failing' }));
  await sendHeartbeat(cloud, b.token, heartbeatBody({ verdict: 'needs_human', verdictReason: 'sd card failing' }));
  t.equal((await listAlerts(cloud, 'state=open')).length, 2);

  // Through the admin API: closed at once.
  t.equal((await http(cloud.url, 'POST', `/admin/v1/devices/${a.deviceId}/revoke`, { token: cloud.adminToken })).status, 200);
  const open = await listAlerts(cloud, 'state=open');
  t.same(open.map((x) => x.deviceId), [b.deviceId]);
  const [closedA] = await listAlerts(cloud, `state=closed&device=${a.deviceId}`);
  t.equal(closedA.resolution, 'device revoked');
  await eventually(() => hook.events('alert.closed').length === 1, 'closed webhook');

  // Behind the server's back (the CLI writes the database): the next sweep closes them.
  await cloud.store.revokeDevice(b.deviceId, cloud.clock.now());
  await cloud.fleet.sweep();
  t.same(await listAlerts(cloud, 'state=open'), []);

  // Silent for an hour, but revoked: nothing new.
  await cloud.clock.advance(3_600_000);
  await cloud.fleet.sweep();
  t.same(await listAlerts(cloud, 'state=open'), []);
  t.equal((await sendHeartbeat(cloud, a.token)).status, 401, 'its token no longer works');
});

t.test('an admin can close an alert; if the condition holds the watch opens a new one', async (t) => {
  const cloud = await startTestCloud(t, { deviceSilentS: 300 });
  await claimDevice(cloud);
  await cloud.clock.advance(301_000);
  await cloud.fleet.sweep();
  const [alert] = await listAlerts(cloud, 'state=open');
  const res = await http(cloud.url, 'POST', `/admin/v1/alerts/${alert.id}/close`, { token: cloud.adminToken });
  t.match(res.body, { id: alert.id, state: 'closed', resolution: 'closed by an admin' });
  const again = await http(cloud.url, 'POST', `/admin/v1/alerts/${alert.id}/close`, { token: cloud.adminToken });
  t.match(again.body, { state: 'closed', closedAt: res.body.closedAt }, 'closing twice changes nothing');
  t.equal((await http(cloud.url, 'POST', '/admin/v1/alerts/alt_nope/close', { token: cloud.adminToken })).body.code, 'ALERT_NOT_FOUND');
  await cloud.fleet.sweep();
  const [next] = await listAlerts(cloud, 'state=open');
  t.not(next.id, alert.id, 'still silent: a new alert');
  const all = await listAlerts(cloud, 'state=all');
  t.same(all.map((a) => a.state), ['open', 'closed'], 'open first');
});
