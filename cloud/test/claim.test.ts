import t from 'tap';
import type { ClaimResponse, DeviceInfo } from '@vigil/protocol';
import { claimDevice, http, issueCode, startTestCloud } from './helpers.js';

t.test('claim codes are one-time and expire', async (t) => {
  const cloud = await startTestCloud(t);
  const code = await issueCode(cloud, 'Cafe Lune', 3600);
  t.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);

  const first = await http<ClaimResponse>(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-1', name: 'front' } });
  t.equal(first.status, 200);
  t.match(first.body, { site: 'Cafe Lune', deviceId: /^dev_/, siteId: /^site_/ });
  t.match(first.body.token, /^vgl_[A-Za-z0-9_-]{43}$/);

  const second = await http(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-2' } });
  t.equal(second.status, 410);
  t.equal(second.body.code, 'CLAIM_CODE_USED');

  const unknown = await http(cloud.url, 'POST', '/v1/claim', { json: { code: 'AAAA-BBBB-CCCC', hardwareId: 'hw-2' } });
  t.equal(unknown.status, 403);
  t.equal(unknown.body.code, 'CLAIM_CODE_UNKNOWN');

  const late = await issueCode(cloud, 'Cafe Lune', 60);
  await cloud.clock.advance(60_000);
  const expired = await http(cloud.url, 'POST', '/v1/claim', { json: { code: late, hardwareId: 'hw-3' } });
  t.equal(expired.status, 410);
  t.equal(expired.body.code, 'CLAIM_CODE_EXPIRED');
  t.match(expired.body, { statusCode: 410, error: 'Gone', message: /expired/ });
});

t.test('the device whose claim answer was lost may use its code again, until it has used the token or the code expires', async (t) => {
  const cloud = await startTestCloud(t);
  const code = await issueCode(cloud, 'Cafe Lune', 3600);
  // The answer never reached the device (power cut between the cloud's commit and its disk)
  const lost = await http<ClaimResponse>(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-1' } });
  t.equal(lost.status, 200);
  t.equal((await http(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-2' } })).status, 410, 'another device: the code is used');
  const retry = await http<ClaimResponse>(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-1' } });
  t.equal(retry.status, 200, 'the same device asking again gets an answer');
  t.equal(retry.body.deviceId, lost.body.deviceId, 'the same device');
  t.not(retry.body.token, lost.body.token, 'with a new token');
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: lost.body.token })).status, 401, 'the token it never stored is revoked');
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: retry.body.token })).status, 200, 'the new one works');
  // Once the device has used its token, the code is spent for good
  await cloud.clock.advance(61_000);
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: retry.body.token })).status, 200);
  const replay = await http(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-1' } });
  t.equal(replay.status, 410, 'used, then asked again: refused');
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: retry.body.token })).status, 200, 'and the device keeps its token');
  // Nor after the code's expiry
  const late = await issueCode(cloud, 'Cafe Lune', 60);
  t.equal((await http(cloud.url, 'POST', '/v1/claim', { json: { code: late, hardwareId: 'hw-9' } })).status, 200);
  await cloud.clock.advance(60_000);
  t.equal((await http(cloud.url, 'POST', '/v1/claim', { json: { code: late, hardwareId: 'hw-9' } })).status, 410, 'expired: refused');
});

t.test('a typed code may differ in case and dashes', async (t) => {
  const cloud = await startTestCloud(t);
  const code = await issueCode(cloud);
  const typed = code.toLowerCase().replace(/-/g, ' ');
  const res = await http(cloud.url, 'POST', '/v1/claim', { json: { code: typed, hardwareId: 'hw-1' } });
  t.equal(res.status, 200);
});

t.test('one code claimed concurrently: exactly one wins', async (t) => {
  const cloud = await startTestCloud(t);
  const code = await issueCode(cloud);
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => http(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: `hw-${i}` } })),
  );
  t.same(results.map((r) => r.status).sort(), [200, 410, 410, 410, 410, 410, 410, 410]);
  const devices = await http(cloud.url, 'GET', '/admin/v1/devices', { token: cloud.adminToken });
  t.equal(devices.body.length, 1);
});

t.test('re-claiming the same hardware at the same site keeps the device, with a new token', async (t) => {
  const cloud = await startTestCloud(t);
  const a = await claimDevice(cloud, 'hw-1');
  const b = await claimDevice(cloud, 'hw-1');
  t.equal(b.deviceId, a.deviceId);
  t.not(b.token, a.token);
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: b.token })).status, 200);
  // The old token belonged to the previous installation: it no longer works.
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: a.token })).status, 401);
});

t.test('a code for another site does not take a working device; once removed there, it may move', async (t) => {
  const cloud = await startTestCloud(t);
  const a = await claimDevice(cloud, 'hw-1', 'Cafe Lune');
  const code = await issueCode(cloud, 'Other Site');
  const refused = await http(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-1' } });
  t.equal(refused.status, 409);
  t.equal(refused.body.code, 'CLAIM_DEVICE_OTHER_SITE');
  t.match(refused.body.message, /registered at site "Cafe Lune".*revoke --device dev_/, 'says where it is and what to do');
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: a.token })).status, 200, 'the device keeps working where it is');
  // Removed from its site, the same code (not used up by the refusal) moves it
  t.equal((await http(cloud.url, 'POST', `/admin/v1/devices/${a.deviceId}/revoke`, { token: cloud.adminToken })).status, 200);
  const moved = await http<ClaimResponse>(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-1' } });
  t.equal(moved.status, 200);
  t.equal(moved.body.site, 'Other Site');
  t.not(moved.body.deviceId, a.deviceId, 'another site is another device');
});

t.test('token check, revoke → 401', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud, 'hw-1');

  const info = await http<DeviceInfo>(cloud.url, 'GET', '/v1/device', { token: dev.token });
  t.equal(info.status, 200);
  t.same(info.body, { deviceId: dev.deviceId, siteId: dev.siteId, site: 'Cafe Lune', name: 'hw-1' });

  for (const token of [undefined, 'vgl_nope', dev.token.slice(0, -1) + (dev.token.endsWith('A') ? 'B' : 'A')]) {
    const res = await http(cloud.url, 'GET', '/v1/device', token ? { token } : {});
    t.equal(res.status, 401);
    t.equal(res.body.code, 'TOKEN_INVALID');
  }

  const noAdmin = await http(cloud.url, 'POST', `/admin/v1/devices/${dev.deviceId}/revoke`, { token: dev.token });
  t.equal(noAdmin.status, 401, 'a device token is not an admin token');
  t.equal(noAdmin.body.code, 'ADMIN_TOKEN_INVALID');

  const revoke = await http(cloud.url, 'POST', `/admin/v1/devices/${dev.deviceId}/revoke`, { token: cloud.adminToken });
  t.equal(revoke.status, 200);
  const after = await http(cloud.url, 'GET', '/v1/device', { token: dev.token });
  t.equal(after.status, 401);
  t.equal(after.body.code, 'TOKEN_INVALID');

  const devices = await http(cloud.url, 'GET', '/admin/v1/devices', { token: cloud.adminToken });
  t.match(devices.body, [{ id: dev.deviceId, revokedAt: Number }]);

  const missing = await http(cloud.url, 'POST', '/admin/v1/devices/dev_nope/revoke', { token: cloud.adminToken });
  t.equal(missing.status, 404);
  t.equal(missing.body.code, 'DEVICE_NOT_FOUND');

  // A new claim brings the device back.
  const back = await claimDevice(cloud, 'hw-1');
  t.equal(back.deviceId, dev.deviceId);
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: back.token })).status, 200);
});

t.test('claim code requests are validated', async (t) => {
  const cloud = await startTestCloud(t);
  const bad = await http(cloud.url, 'POST', '/admin/v1/claim-codes', { token: cloud.adminToken, json: { site: '' } });
  t.equal(bad.status, 400);
  t.equal(bad.body.code, 'BAD_REQUEST');
  const noToken = await http(cloud.url, 'POST', '/admin/v1/claim-codes', { json: { site: 'x' } });
  t.equal(noToken.status, 401);
  const missing = await http(cloud.url, 'POST', '/v1/claim', { json: { code: 'x' } });
  t.equal(missing.status, 400);
  t.match(missing.body.message, /hardwareId/);
});
