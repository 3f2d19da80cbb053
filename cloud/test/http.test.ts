import t from 'tap';
import { createServer } from 'node:net';
import { claimDevice, heartbeatBody, http, loginDashboard, makeJpeg, sendHeartbeat, startTestCloud, uploadFrame } from './helpers.js';

t.test('healthz and unknown routes', async (t) => {
  const cloud = await startTestCloud(t);
  const ok = await http(cloud.url, 'GET', '/healthz');
  t.equal(ok.status, 200);
  t.same(ok.body, { ok: true });
  const missing = await http(cloud.url, 'GET', '/nope?x=1');
  t.equal(missing.status, 404);
  t.same(missing.body, { statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'no route for GET /nope' });
});

t.test('malformed JSON → 400 BAD_REQUEST with the reason', async (t) => {
  const cloud = await startTestCloud(t);
  const res = await http(cloud.url, 'POST', '/v1/claim', { body: '{"code": "x",', headers: { 'content-type': 'application/json' } });
  t.equal(res.status, 400);
  t.match(res.body, { statusCode: 400, code: 'BAD_REQUEST', error: 'Bad Request', message: /not valid JSON: .+/ });
  const empty = await http(cloud.url, 'POST', '/v1/claim', { body: '', headers: { 'content-type': 'application/json' } });
  t.equal(empty.status, 400);
  t.match(empty.body, { code: 'BAD_REQUEST', message: /empty/ });
  const notObject = await http(cloud.url, 'POST', '/v1/claim', { json: [1, 2] });
  t.equal(notObject.status, 400);
  t.equal(notObject.body.code, 'BAD_REQUEST');
  const text = await http(cloud.url, 'POST', '/v1/claim', { body: 'code=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.equal(text.status, 415);
  t.equal(text.body.code, 'UNSUPPORTED_MEDIA_TYPE');
  const huge = await http(cloud.url, 'POST', '/v1/claim', { json: { code: 'x'.repeat(100_000), hardwareId: 'h' } });
  t.equal(huge.status, 413);
  t.equal(huge.body.code, 'BODY_TOO_LARGE');
});

t.test('per-device rate limit → 429 RATE_LIMITED with Retry-After', async (t) => {
  const cloud = await startTestCloud(t, { deviceRateLimit: 3, rateLimitWindowMs: 30_000 });
  const a = await claimDevice(cloud, 'hw-a');
  const b = await claimDevice(cloud, 'hw-b');
  for (let i = 0; i < 3; i++) t.equal((await http(cloud.url, 'GET', '/v1/device', { token: a.token })).status, 200);
  const limited = await http(cloud.url, 'GET', '/v1/cameras', { token: a.token });
  t.equal(limited.status, 429);
  t.match(limited.body, { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: /rate limit/ });
  const retryAfter = Number(limited.headers['retry-after']);
  t.ok(retryAfter > 0 && retryAfter <= 30, `Retry-After is seconds within the window (${retryAfter})`);
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: b.token })).status, 200, 'another device has its own budget');
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: 'vgl_unknown' })).status, 401, 'a bad token is refused before the limiter');
  t.equal((await http(cloud.url, 'GET', '/healthz')).status, 200, 'health is not limited');
});

t.test('close() frees the port; a new cloud on the same data dir and port keeps everything', async (t) => {
  const first = await startTestCloud(t);
  const dev = await claimDevice(first);
  const jpeg = await makeJpeg(1);
  const frameId = await uploadFrame(first, dev.token, jpeg);
  const { port, dataDir } = first;
  const adminToken = first.adminToken;
  await first.close();
  await first.close(); // idempotent

  await new Promise<void>((resolve, reject) => {
    const probe = createServer().once('error', reject);
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });

  const second = await startTestCloud(t, { dataDir, port });
  t.equal(second.port, port);
  t.equal(second.adminToken, adminToken, 'the generated admin token is kept in the data dir');
  t.equal((await http(second.url, 'GET', '/v1/device', { token: dev.token })).status, 200, 'device tokens survive');
  const img = await http(second.url, 'GET', `/v1/frames/${frameId}/image`, { token: dev.token });
  t.ok(img.raw.equals(jpeg.bytes), 'objects survive');
  // A URL presigned before the restart is still valid: the signing key is kept too.
  const again = await http(second.url, 'POST', '/v1/uploads/presign', {
    token: dev.token,
    json: { camera: 'cam-a', capturedAt: 99, variant: 'compressed', bytes: jpeg.bytes.length, sha256: jpeg.sha256, dhash: jpeg.dhash },
  });
  t.equal(again.body.status, 'upload');
});

t.test('close() does not wait forever for idle keep-alive clients', async (t) => {
  const cloud = await startTestCloud(t);
  // undici's global pool keeps the connection alive after this request.
  t.equal((await http(cloud.url, 'GET', '/healthz')).status, 200);
  const started = Date.now();
  await cloud.close();
  t.ok(Date.now() - started < 2_000, 'closed promptly');
});

t.test('the dashboard: the overview behind the login; thumbnails load with the session cookie', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud, 'hw-dash', 'Bistro <Nord>');
  await uploadFrame(cloud, dev.token, await makeJpeg(2));

  const anon = await http(cloud.url, 'GET', '/');
  t.equal(anon.status, 303);
  t.equal(anon.headers.location, '/login?next=%2F');
  t.notMatch(anon.raw.toString(), /hw-dash/);
  const oldLogin = await http(cloud.url, 'GET', '/?token=' + encodeURIComponent(cloud.adminToken));
  t.match(oldLogin.headers.location, /^\/login\?/, 'the admin token in the address no longer logs in');
  t.notOk(oldLogin.headers['set-cookie']);

  const cookie = await loginDashboard(cloud, t);
  const page = await http(cloud.url, 'GET', '/', { headers: { cookie } });
  const html = page.raw.toString();
  t.match(html, /Bistro &#60;Nord&#62;/, 'names are escaped');
  t.match(html, /hw-dash/);
  t.match(html, /<img src="\/admin\/v1\/frames\/frm_[^"]+\/image"/);

  const img = /src="([^"]+)"/.exec(html)![1]!;
  t.equal((await http(cloud.url, 'GET', img, { headers: { cookie } })).status, 200, 'thumbnails load with the cookie');
  const post = await http(cloud.url, 'POST', '/admin/v1/claim-codes', { json: { site: 'x' }, headers: { cookie } });
  t.equal(post.status, 401, 'the cookie does not authorise changes');
});

t.test('the dashboard: devices with their status, alerts open first', async (t) => {
  const cloud = await startTestCloud(t);
  const sick = await claimDevice(cloud, 'hw-<sick>', 'Bistro');
  const well = await claimDevice(cloud, 'hw-well', 'Bistro');
  await sendHeartbeat(cloud, sick.token, heartbeatBody({ verdict: 'needs_human', verdictReason: 'disk <full>', cameras: [] }));
  await sendHeartbeat(cloud, well.token, heartbeatBody({ firmware: { version: '2025.03.1', slot: 'B', trial: false } }));
  const cookie = await loginDashboard(cloud);

  for (const path of ['/devices', '/alerts']) {
    const anon = await http(cloud.url, 'GET', path);
    t.equal(anon.headers.location, `/login?next=${encodeURIComponent(path)}`, `${path} needs the login`);
    t.notMatch(anon.raw.toString(), /hw-well/);
  }

  const devices = (await http(cloud.url, 'GET', '/devices', { headers: { cookie } })).raw.toString();
  t.match(devices, /hw-&#60;sick&#62;/, 'names are escaped');
  t.match(devices, /needs_human/);
  t.match(devices, /disk &#60;full&#62;/);
  t.match(devices, /2025\.03\.1 <small>slot B<\/small>/);
  t.match(devices, /1\/1 ok/);
  t.match(devices, /href="\/alerts\?device=dev_[^"]+">1 open/);

  const alerts = (await http(cloud.url, 'GET', '/alerts', { headers: { cookie } })).raw.toString();
  t.match(alerts, /1 open/);
  t.match(alerts, /needs_human/);
  t.match(alerts, /hw-&#60;sick&#62; needs a technician: disk &#60;full&#62;/);
  t.notMatch(alerts, /<script(?! src="\/assets\/live\.[0-9a-f]{12}\.js" defer><\/script>)/, "no script but the dashboard's own");
  const overview = (await http(cloud.url, 'GET', '/', { headers: { cookie } })).raw.toString();
  t.match(overview, /1 open alert</);
});
