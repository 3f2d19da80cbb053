import t from 'tap';
import { MAX_LOG_LINE_CHARS, MAX_LOG_LINES } from '../src/routes/heartbeat-schema.js';
import { claimDevice, heartbeatBody, http, listAlerts, sendHeartbeat, startTestCloud } from './helpers.js';

t.test('a heartbeat is stored: latest report, last seen, device status, cameras', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud, 'hw-1');
  await cloud.clock.advance(5_000);
  const body = heartbeatBody({
    firmware: { version: '2025.02.0', slot: 'B', trial: true },
    queue: [
      { camera: 'cam-a', variant: 'compressed', depth: 3, oldestAgeMs: 90_000 },
      { camera: 'cam-a', variant: 'original', depth: 5, oldestAgeMs: 120_000 },
    ],
    cameras: [
      { camera: 'cam-a', name: 'Front door', state: 'ok', lastCaptureAt: 1, capturesOk: 10, failures: 0, lastError: null },
      { camera: 'cam-b', name: 'Till', state: 'stopped', lastCaptureAt: null, capturesOk: 0, failures: 2, lastError: 'CAPTURE_TIMEOUT: no frame in 120 s' },
    ],
  });
  const res = await sendHeartbeat(cloud, dev.token, body);
  t.equal(res.status, 200);
  t.same(res.body, { receivedAt: cloud.clock.now() });

  const list = await http(cloud.url, 'GET', '/admin/v1/devices', { token: cloud.adminToken });
  t.equal(list.status, 200);
  t.match(list.body, [
    {
      id: dev.deviceId,
      lastSeenAt: cloud.clock.now(),
      openAlerts: 1, // cam-b is stopped
      status: {
        receivedAt: cloud.clock.now(),
        verdict: 'nominal',
        firmwareVersion: '2025.02.0',
        firmwareSlot: 'B',
        agentVersion: '0.1.0',
        queueDepth: 8,
        oldestQueuedAgeMs: 120_000,
        cameras: { total: 2, ok: 1, failing: 0, stopped: 1 },
      },
    },
  ]);

  const detail = await http(cloud.url, 'GET', `/admin/v1/devices/${dev.deviceId}`, { token: cloud.adminToken });
  t.equal(detail.status, 200);
  t.same(detail.body.report, body, 'the latest report is kept in full');
  t.same(
    detail.body.cameras.map((c: { key: string; reported: { state: string } }) => [c.key, c.reported.state]),
    [
      ['cam-a', 'ok'],
      ['cam-b', 'stopped'],
    ],
    'reported cameras exist in the cloud before they upload anything',
  );
  t.equal((await http(cloud.url, 'GET', '/admin/v1/devices/dev_nope', { token: cloud.adminToken })).body.code, 'DEVICE_NOT_FOUND');
  const cams = await http(cloud.url, 'GET', '/v1/cameras', { token: dev.token });
  t.same(cams.body.map((c: { key: string }) => c.key), ['cam-a', 'cam-b']);
});

t.test('heartbeat auth: no token or a bad one is 401', async (t) => {
  const cloud = await startTestCloud(t);
  for (const token of [undefined, 'vgl_nope']) {
    const res = await http(cloud.url, 'POST', '/v1/heartbeat', { json: heartbeatBody(), ...(token ? { token } : {}) });
    t.equal(res.status, 401);
    t.equal(res.body.code, 'TOKEN_INVALID');
  }
});

t.test('a malformed heartbeat is 400 with the field named; nothing is stored', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  const { verdict: _v, ...noVerdict } = heartbeatBody();
  const cases: [string, unknown, RegExp][] = [
    ['missing verdict', noVerdict, /verdict/],
    ['unknown verdict', heartbeatBody({ verdict: 'fine' as never }), /verdict/],
    ['camera state', heartbeatBody({ cameras: [{ ...heartbeatBody().cameras[0]!, state: 'dead' as never }] }), /state/],
    ['queue depth negative', heartbeatBody({ queue: [{ camera: 'cam-a', variant: 'compressed', depth: -1, oldestAgeMs: null }] }), /depth/],
    ['queue variant', heartbeatBody({ queue: [{ camera: 'cam-a', variant: 'huge' as never, depth: 1, oldestAgeMs: null }] }), /variant/],
    ['logs not strings', heartbeatBody({ logs: [{ msg: 'x' }] as never }), /logs/],
    ['escalation step 9', heartbeatBody({ escalation: [{ at: 1, step: 9 as never, part: null, reason: 'x' }] }), /step/],
    ['too many cameras', heartbeatBody({ cameras: Array.from({ length: 65 }, (_, i) => ({ ...heartbeatBody().cameras[0]!, camera: `c${i}` })) }), /cameras/],
    ['an array', [heartbeatBody()], /object/],
    ['update state unknown', heartbeatBody({ update: { releaseId: 'rel_1', version: '2.0.0', state: 'bricked' as never, reason: null, at: 1 } }), /state/],
  ];
  for (const [name, body, message] of cases) {
    const res = await sendHeartbeat(cloud, dev.token, body);
    t.equal(res.status, 400, name);
    t.match(res.body, { statusCode: 400, code: 'BAD_REQUEST', error: 'Bad Request', message }, name);
  }
  const notJson = await http(cloud.url, 'POST', '/v1/heartbeat', { token: dev.token, body: '{"sentAt":', headers: { 'content-type': 'application/json' } });
  t.equal(notJson.status, 400);
  t.match(notJson.body.message, /not valid JSON/);
  const huge = await sendHeartbeat(cloud, dev.token, heartbeatBody({ logs: Array.from({ length: 40 }, () => 'x'.repeat(8_000)) }));
  t.equal(huge.status, 413);
  t.equal(huge.body.code, 'BODY_TOO_LARGE');

  const detail = await http(cloud.url, 'GET', `/admin/v1/devices/${dev.deviceId}`, { token: cloud.adminToken });
  t.equal(detail.body.report, null, 'no refused heartbeat was stored');
  t.equal(detail.body.status, null);
});

t.test('log lines are capped: the newest kept, long ones cut; unknown fields dropped', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  const logs = Array.from({ length: MAX_LOG_LINES + 50 }, (_, i) => `{"msg":"line ${i}"}`);
  logs[logs.length - 1] = 'y'.repeat(MAX_LOG_LINE_CHARS * 3);
  const res = await sendHeartbeat(cloud, dev.token, { ...heartbeatBody({ verdict: 'self_healed', verdictReason: 'restarted', logs }), futureField: 'x' });
  t.equal(res.status, 200);
  const { report } = (await http(cloud.url, 'GET', `/admin/v1/devices/${dev.deviceId}`, { token: cloud.adminToken })).body;
  t.equal(report.logs.length, MAX_LOG_LINES);
  t.equal(report.logs[0], '{"msg":"line 50"}', 'the oldest lines went');
  t.equal(report.logs.at(-1).length, MAX_LOG_LINE_CHARS);
  t.match(report.logs.at(-1), /…$/);
  t.notOk('futureField' in report);
});

t.test('one device cannot affect another', async (t) => {
  const cloud = await startTestCloud(t);
  const alice = await claimDevice(cloud, 'hw-alice');
  const bob = await claimDevice(cloud, 'hw-bob');
  const sick = heartbeatBody({ verdict: 'needs_human', verdictReason: 'camera worker keeps crashing' });
  t.equal((await sendHeartbeat(cloud, alice.token, sick)).status, 200);
  t.equal((await sendHeartbeat(cloud, bob.token, heartbeatBody())).status, 200);

  const open = await listAlerts(cloud, 'state=open');
  t.same(open.map((a) => [a.kind, a.deviceId]), [['needs_human', alice.deviceId]], "bob's healthy heartbeat does not close alice's alert");
  const devices = (await http(cloud.url, 'GET', '/admin/v1/devices', { token: cloud.adminToken })).body;
  const byId = new Map(devices.map((d: { id: string }) => [d.id, d]));
  t.match(byId.get(alice.deviceId), { status: { verdict: 'needs_human' }, openAlerts: 1 });
  t.match(byId.get(bob.deviceId), { status: { verdict: 'nominal' }, openAlerts: 0 });
  // The same camera key on two devices is two cameras.
  const aliceCams = (await http(cloud.url, 'GET', '/v1/cameras', { token: alice.token })).body;
  const bobCams = (await http(cloud.url, 'GET', '/v1/cameras', { token: bob.token })).body;
  t.not(aliceCams[0].id, bobCams[0].id);
});

t.test('heartbeat history is pruned to the newest per device', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  for (let i = 0; i < 30; i++) {
    await sendHeartbeat(cloud, dev.token, heartbeatBody({ queue: [{ camera: 'cam-a', variant: 'compressed', depth: i, oldestAgeMs: 1 }] }));
    await cloud.clock.advance(60_000);
  }
  const history = await cloud.store.fleet.queueHistory(dev.deviceId, 100);
  t.equal(history.length, 20);
  t.same(history.map((h) => h.depth.compressed), Array.from({ length: 20 }, (_, i) => i + 10), 'oldest first, newest kept');
});

t.test('the update a heartbeat carries is stored; an agent from before updates sends none', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  const report = async () => (await http(cloud.url, 'GET', `/admin/v1/devices/${dev.deviceId}`, { token: cloud.adminToken })).body.report;
  const { update: _u, ...old } = heartbeatBody();
  t.equal((await sendHeartbeat(cloud, dev.token, old)).status, 200, 'no update field: accepted');
  t.notOk((await report()).update, 'and none stored');
  const update = { releaseId: 'rel_1', version: '2.0.0', state: 'reverted' as const, reason: 'trial of 2.0.0 not healthy within 600 s of boot: no upload acknowledged', at: 1_700_000_000_000 };
  t.equal((await sendHeartbeat(cloud, dev.token, heartbeatBody({ update }))).status, 200);
  t.same((await report()).update, update, 'stored as sent');
});
