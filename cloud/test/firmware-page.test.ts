import t from 'tap';
import { claimDevice, heartbeatBody, http, loginDashboard, sendHeartbeat, sha256, startTestCloud, type TestCloud } from './helpers.js';

// The dashboard's /firmware page and the update column of /devices, rendered by a real cloud
// whose releases and deployments come through the real admin API and whose update states come
// through the real device API.

const OCTETS = { 'content-type': 'application/octet-stream' };
const REVERT_REASON = '<b>no upload</b> acknowledged within 600 s of the trial boot & gave up';
const FAIL_REASON = 'install: <no space left> on /dev/mmcblk0p3';

function bundleBytes(seed: number, size = 5000): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed * 13 + (i >> 5)) & 255;
  return b;
}

async function release(cloud: TestCloud, version: string, body: Buffer): Promise<string> {
  const res = await http(cloud.url, 'POST', `/admin/v1/firmware/releases?version=${version}`, { token: cloud.adminToken, body, headers: OCTETS });
  if (res.status !== 201) throw new Error(`release: ${res.status} ${res.raw.toString()}`);
  return res.body.id as string;
}

async function deploy(cloud: TestCloud, json: Record<string, unknown>): Promise<string> {
  const res = await http(cloud.url, 'POST', '/admin/v1/firmware/deployments', { token: cloud.adminToken, json });
  if (res.status !== 201) throw new Error(`deploy: ${res.status} ${res.raw.toString()}`);
  return res.body.id as string;
}

/** The device asks for its target (taking a slot), then reports each state in turn. */
async function update(cloud: TestCloud, token: string, deploymentId: string, states: [string, string | null][]): Promise<void> {
  const target = await http(cloud.url, 'GET', '/v1/firmware/target', { token });
  if (target.body.deploymentId !== deploymentId) throw new Error(`target: ${target.raw.toString()}`);
  const { id: releaseId, version } = target.body.release;
  for (const [state, reason] of states) {
    const res = await http(cloud.url, 'POST', '/v1/firmware/status', { token, json: { deploymentId, releaseId, version, state, reason, at: cloud.clock.now() } });
    if (res.status !== 200) throw new Error(`status: ${res.status} ${res.raw.toString()}`);
    await cloud.clock.advance(60_000);
  }
}

/** The chunk of `html` from the element with this id to the next deployment row. */
function deploymentRow(html: string, id: string): string {
  const row = html.split('<tr id="').find((r) => r.startsWith(`${id}"`));
  if (!row) throw new Error(`no row for ${id}`);
  return row;
}

/** The devices page's row of one device (rows are split on <tr>). */
function deviceRow(html: string, deviceId: string): string {
  const row = html.split('<tr>').find((r) => r.includes(`<code>${deviceId}</code>`));
  if (!row) throw new Error(`no row for ${deviceId}`);
  return row;
}

t.test('/firmware and /devices show releases, deployments, per-state counts and each device’s update with its reason', async (t) => {
  const cloud = await startTestCloud(t);
  const [a, b, c] = [await claimDevice(cloud, 'hw-a', 'Bistro'), await claimDevice(cloud, 'hw-b', 'Bistro'), await claimDevice(cloud, 'hw-c', 'Bistro')];
  const [d, e] = [await claimDevice(cloud, 'hw-d', 'Cafe Lune'), await claimDevice(cloud, 'hw-e', 'Cafe Lune')];
  t.equal((await sendHeartbeat(cloud, a.token, heartbeatBody({ firmware: { version: '2025.02.1', slot: 'B', trial: false } }))).status, 200);

  const feb = bundleBytes(1);
  const febId = await release(cloud, '2025.02.1', feb);
  const marId = await release(cloud, '2025.03.1', bundleBytes(2, 3 * 1024 * 1024));

  // Bistro: one commits, the next reverts and halts the rollout, the third never starts.
  const bistro = await deploy(cloud, { releaseId: febId, deviceIds: [a.deviceId, b.deviceId, c.deviceId], maxConcurrent: 2, failureThreshold: 1 });
  await update(cloud, a.token, bistro, [['downloading', null], ['installing', null], ['trial', null], ['committed', null]]);
  await update(cloud, b.token, bistro, [['downloading', null], ['installing', null], ['trial', null], ['reverted', REVERT_REASON]]);
  // Cafe Lune, by site: one commits, one fails; under a threshold of 2 it finishes.
  const lune = await deploy(cloud, { releaseId: marId, site: 'Cafe Lune', maxConcurrent: 5, failureThreshold: 2 });
  await update(cloud, d.token, lune, [['downloading', null], ['committed', null]]);
  await update(cloud, e.token, lune, [['downloading', null], ['failed', FAIL_REASON]]);
  // A retry for b: it has its target but has not reported yet.
  const retry = await deploy(cloud, { releaseId: marId, deviceIds: [b.deviceId] });
  await update(cloud, b.token, retry, []);

  const anon = await http(cloud.url, 'GET', '/firmware');
  t.equal(anon.headers.location, '/login?next=%2Ffirmware', 'needs the login');
  t.notMatch(anon.raw.toString(), /2025\.02\.1/);

  const cookie = await loginDashboard(cloud);
  const res = await http(cloud.url, 'GET', '/firmware', { headers: { cookie } });
  t.equal(res.status, 200);
  t.equal(res.headers['cache-control'], 'no-store');
  const html = res.raw.toString();
  t.notMatch(html, /<b>|<no space/, 'nothing from a device reaches the page unescaped');
  t.match(html, /<nav>.*<a href="\/firmware">Firmware<\/a><\/nav>/);
  t.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);

  t.match(html, /<h2>Releases \(2\)/);
  const febRow = html.split('<tr>').find((r) => r.includes(`<code>${febId}</code>`))!;
  // Uploaded before the twelve reports, a minute apart.
  for (const text of ['2025.02.1', 'title="5000 bytes">4.9 KiB', `<code title="${sha256(feb)}">${sha256(feb).slice(0, 12)}…</code>`, 'not checked', '12 min ago']) {
    t.ok(febRow.includes(text), `the February release shows ${text}`);
  }
  t.match(html, /title="3145728 bytes">3\.0 MiB/);

  t.match(html, /<h2>Deployments \(3\)/);
  const order = [retry, lune, bistro].map((id) => html.indexOf(`<tr id="${id}"`));
  t.ok(order.every((p) => p > 0));
  t.same([...order].sort((x, y) => x - y), order, 'newest deployment first');

  const b1 = deploymentRow(html, bistro);
  for (const text of [
    '2025.02.1',
    '3 devices: Bistro / hw-a, Bistro / hw-b, Bistro / hw-c',
    '<span class="bad">halted</span>',
    `1 device(s) failed or reverted, threshold 1; last: ${b.deviceId} reverted: &#60;b&#62;no upload&#60;/b&#62; acknowledged`,
    '<td>2</td><td>1</td>',
    '3 total: 1 waiting, 1 <span class="ok">committed</span>, 1 <span class="bad">reverted</span>',
  ]) {
    t.ok(b1.includes(text), `the Bistro deployment shows ${text}`);
  }
  t.match(b1, /<td>Bistro \/ hw-b<\/td><td><span class="bad">reverted<\/span><\/td><td>&#60;b&#62;no upload&#60;\/b&#62; acknowledged within 600 s of the trial boot &#38; gave up<\/td>/, 'per device: the revert and its reason');

  const l1 = deploymentRow(html, lune);
  for (const text of ['2025.03.1', 'site Cafe Lune', '<span class="ok">finished</span>', '<td>5</td><td>2</td>', '2 total: 1 <span class="ok">committed</span>, 1 <span class="bad">failed</span>', 'install: &#60;no space left&#62; on /dev/mmcblk0p3']) {
    t.ok(l1.includes(text), `the Cafe Lune deployment shows ${text}`);
  }
  t.notMatch(l1, /halted/);

  const r1 = deploymentRow(html, retry);
  for (const text of ['1 device: Bistro / hw-b', '<span class="warn">active</span>', '1 total: 1 <span class="warn">started</span>']) {
    t.ok(r1.includes(text), `the retry shows ${text}`);
  }

  const devices = (await http(cloud.url, 'GET', '/devices', { headers: { cookie } })).raw.toString();
  t.notMatch(devices, /<b>|<no space/, 'nothing from a device reaches the devices page unescaped');
  t.match(devices, /<th>update<\/th>/);
  const ra = deviceRow(devices, a.deviceId);
  t.ok(ra.includes('2025.02.1 <small>slot B</small>'), 'the running firmware and slot from the heartbeat');
  t.match(ra, new RegExp(`<a href="/firmware#${bistro}">2025\\.02\\.1</a> <span class="ok">committed</span> <span title="[^"]+">\\d+ min ago`));
  t.notMatch(ra, /before:/, 'a device that reported in its newest deployment shows only that');
  const rb = deviceRow(devices, b.deviceId);
  t.match(rb, new RegExp(`<a href="/firmware#${retry}">2025\\.03\\.1</a> <span class="warn">started</span>`), 'b follows the retry…');
  t.match(
    rb,
    new RegExp(`before: <a href="/firmware#${bistro}">2025\\.02\\.1</a> <span class="bad">reverted</span> .*<small class="bad">&#60;b&#62;no upload&#60;/b&#62; acknowledged`),
    '…and its revert stays visible with the reason',
  );
  t.match(deviceRow(devices, c.deviceId), new RegExp(`<a href="/firmware#${bistro}">2025\\.02\\.1</a> waiting`));
  t.match(deviceRow(devices, e.deviceId), /<span class="bad">failed<\/span> <span title="[^"]+">\d+ min ago<\/span><br><small class="bad">install: &#60;no space left&#62; on \/dev\/mmcblk0p3<\/small>/);
  t.match(deviceRow(devices, d.deviceId), /<small>no heartbeat yet<\/small><\/td><td><a href="\/firmware#/, 'the update shows without a heartbeat');
});

t.test('/firmware with nothing uploaded; a device in no deployment shows no update', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud, 'hw-1');
  const cookie = await loginDashboard(cloud);
  const html = (await http(cloud.url, 'GET', '/firmware', { headers: { cookie } })).raw.toString();
  t.match(html, /No releases\./);
  t.match(html, /No deployments\./);
  const devices = (await http(cloud.url, 'GET', '/devices', { headers: { cookie } })).raw.toString();
  t.match(deviceRow(devices, dev.deviceId), /<td>—<\/td>\s*<td>—<\/td><\/tr>/, 'no update, no alerts');
});
