import t from 'tap';
import type { ClaimResponse } from '@vigil/protocol';
import { claimDevice, heartbeatBody, http, loginDashboard, sendHeartbeat, startTestCloud } from './helpers.js';

// The dashboard's "Add a device" (a claim code for a technician's card) and what it shows of a
// device's status page: its address and setup PIN on /devices and on the printable label.
// A real cloud; the code is used through the real device API.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };


t.test('Add a device: a claim code for a site, shown once with the card file; the code works once', async (t) => {
  const cloud = await startTestCloud(t);
  const anon = await http(cloud.url, 'POST', '/devices/new', { body: 'site=Cafe+Lune&ttl=3600', headers: FORM });
  t.equal(anon.status, 401, 'not logged in: refused');
  t.match(anon.raw.toString(), /action="\/login"/, 'with the login form');

  const cookie = await loginDashboard(cloud);
  t.match((await http(cloud.url, 'GET', '/devices', { headers: { cookie } })).raw.toString(), /href="\/devices\/new"/, '/devices links to the form');
  const form = (await http(cloud.url, 'GET', '/devices/new', { headers: { cookie } })).raw.toString();
  t.match(form, /<form method="post" action="\/devices\/new">/);

  const res = await http(cloud.url, 'POST', '/devices/new', { body: 'site=Caf%C3%A9+%3CLune%3E&ttl=3600', headers: { ...FORM, cookie } });
  t.equal(res.status, 200);
  const html = res.raw.toString();
  const code = /id="claim-code">([0-9A-Z-]+)</.exec(html)?.[1];
  t.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/, 'the code is on the page');
  t.match(html, /Claim code for Café &#60;Lune&#62;/, 'for the site, escaped');
  t.match(html, new RegExp(`make flash DEVICE=/dev/sdX CLAIM=${code} CLOUD=http://127\\.0\\.0\\.1:${cloud.port}`), 'with the make flash line');
  t.match(html, new RegExp(`<pre id="card-file">CLOUD_URL=http://127\\.0\\.0\\.1:${cloud.port}\\nCLAIM_CODE=${code}\\n</pre>`), 'and the card file to write by hand');
  t.match(html, /Valid once, until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/);

  const claim = await http<ClaimResponse>(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-1' } });
  t.equal(claim.status, 200);
  t.equal(claim.body.site, 'Café <Lune>', 'the code claims a device for that site');
  t.equal((await http(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-2' } })).status, 410, 'once');

  const bad = await http(cloud.url, 'POST', '/devices/new', { body: 'site=&ttl=3600', headers: { ...FORM, cookie } });
  t.equal(bad.status, 400);
  t.match(bad.raw.toString(), /class="bad">site must be 1-200 characters/, 'a bad site: the form again, with why');
  const ttl = await http(cloud.url, 'POST', '/devices/new', { body: 'site=X&ttl=forever', headers: { ...FORM, cookie } });
  t.equal(ttl.status, 400);
  t.match(ttl.raw.toString(), /ttlSeconds must be a whole number/);
});

t.test("a device's status page address and setup PIN: on /devices and its printable label", async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud, 'hw-1', 'Cafe Lune');
  const cookie = await loginDashboard(cloud);
  const before = (await http(cloud.url, 'GET', `/devices/${dev.deviceId}/label`, { headers: { cookie } })).raw.toString();
  t.match(before, /has not sent its status page address/, 'before its first heartbeat: says so');

  const local = { hostName: 'vigil-1a2b', port: 80, setupPin: '48213957', addresses: ['192.168.1.50'] };
  t.equal((await sendHeartbeat(cloud, dev.token, heartbeatBody({ local }))).status, 200);
  const devices = (await http(cloud.url, 'GET', '/devices', { headers: { cookie } })).raw.toString();
  t.match(devices, /status page <code>http:\/\/vigil-1a2b\.local\/<\/code> · 192\.168\.1\.50 · setup PIN <code class="pin">48213957<\/code>/);
  const label = (await http(cloud.url, 'GET', `/devices/${dev.deviceId}/label`, { headers: { cookie } })).raw.toString();
  t.match(label, /http:\/\/vigil-1a2b\.local\//);
  t.match(label, /id="setup-pin">48213957</);
  t.equal((await http(cloud.url, 'GET', `/devices/${dev.deviceId}/label`)).headers.location, `/login?next=${encodeURIComponent(`/devices/${dev.deviceId}/label`)}`, 'the label needs the login');
  t.equal((await http(cloud.url, 'GET', '/devices/dev_nope/label', { headers: { cookie } })).status, 404);

  // A bad PIN or host name from a device: refused by the schema, nothing stored
  for (const bad of [{ ...local, setupPin: '1234' }, { ...local, hostName: 'Vigil <x>' }, { ...local, port: 0 }]) {
    t.equal((await sendHeartbeat(cloud, dev.token, heartbeatBody({ local: bad }))).status, 400, JSON.stringify(bad));
  }
  // An agent from before the status page: no `local`, still accepted
  const old = heartbeatBody();
  delete old.local;
  t.equal((await sendHeartbeat(cloud, dev.token, old)).status, 200);
  t.notMatch((await http(cloud.url, 'GET', '/devices', { headers: { cookie } })).raw.toString(), /setup PIN/, 'and the latest report decides');
});
