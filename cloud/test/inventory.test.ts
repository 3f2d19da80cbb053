import Database from 'better-sqlite3';
import { join } from 'node:path';
import t from 'tap';
import { sha256Hex } from '../src/lib/ids.js';
import { DB_FILE, type RunningCloud } from '../src/main.js';
import { MAX_INVENTORY_CAMERAS } from '../src/routes/inventory.js';
import { MIGRATIONS } from '../src/store/migrations.js';
import { claimDevice, heartbeatBody, http, inventoryItem, listAlerts, makeJpeg, sendHeartbeat, sendInventory, startTestCloud, tempDir, uploadFrame } from './helpers.js';

// PUT /v1/cameras/inventory against a real cloud: stored by camera key on the same camera
// record as uploads, replaced as a whole, refused with the field named, scoped to its device.

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read bodies loosely
async function adminCameras(cloud: RunningCloud): Promise<any[]> {
  const res = await http(cloud.url, 'GET', '/admin/v1/cameras', { token: cloud.adminToken });
  if (res.status !== 200) throw new Error(`cameras: ${res.status} ${res.raw.toString()}`);
  return res.body;
}

t.test('an inventory is stored by camera key; a new address updates the same camera', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud, 'hw-inv');
  await cloud.clock.advance(1_000);
  const till = inventoryItem({ camera: 'cam-b', name: 'Till', source: 'config', manufacturer: null, model: null, firmware: null, serial: null, mac: null, capturePath: 'snapshot' });
  const res = await sendInventory(cloud, dev.token, { cameras: [inventoryItem(), till] });
  t.equal(res.status, 200);
  t.same(res.body, { receivedAt: cloud.clock.now() });
  const first = cloud.clock.now();

  const cams = await adminCameras(cloud);
  t.equal(cams.length, 2);
  const [a, b] = cams;
  t.same(a.inventory, {
    name: 'Front door',
    source: 'onvif',
    manufacturer: 'Axis',
    model: 'M3106-L Mk II',
    firmware: '10.12.1',
    serial: 'ACCC8E123456',
    mac: 'ac:cc:8e:12:34:56',
    address: '192.168.1.20',
    capturePath: 'rtsp',
    present: true,
    lastError: null,
    lastSeenAt: 1_700_000_000_000,
    listed: true,
    receivedAt: first,
    unlistedAt: null,
  });
  t.match(a, { key: 'cam-a', name: 'Front door', deviceId: dev.deviceId, frames: 0 });
  t.match(b, { key: 'cam-b', name: 'Till', inventory: { source: 'config', manufacturer: null, mac: null, capturePath: 'snapshot' } });

  // DHCP gave the camera a new address: same key, same camera, new address.
  await cloud.clock.advance(60_000);
  const moved = inventoryItem({ address: '192.168.1.77:8080', lastSeenAt: 1_700_000_060_000, firmware: '11.0.0' });
  t.equal((await sendInventory(cloud, dev.token, { cameras: [moved, till] })).status, 200);
  const after = await adminCameras(cloud);
  t.equal(after.length, 2, 'no duplicate camera');
  t.equal(after[0].id, a.id, 'the same camera record');
  t.match(after[0].inventory, { address: '192.168.1.77:8080', firmware: '11.0.0', lastSeenAt: 1_700_000_060_000, receivedAt: cloud.clock.now(), listed: true });

  const detail = await http(cloud.url, 'GET', `/admin/v1/devices/${dev.deviceId}`, { token: cloud.adminToken });
  t.equal(detail.body.inventoryReceivedAt, cloud.clock.now());
  t.match(detail.body.cameras, [
    { key: 'cam-a', inventory: { address: '192.168.1.77:8080' } },
    { key: 'cam-b', inventory: { capturePath: 'snapshot' } },
  ]);
  const list = await http(cloud.url, 'GET', '/admin/v1/devices', { token: cloud.adminToken });
  t.match(list.body, [{ id: dev.deviceId, inventoryReceivedAt: cloud.clock.now() }]);
});

t.test('frames and inventory meet on one camera, whichever comes first', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  // Listed first, then uploading.
  await sendInventory(cloud, dev.token, { cameras: [inventoryItem()] });
  const [listed] = await adminCameras(cloud);
  await uploadFrame(cloud, dev.token, await makeJpeg(1), { camera: 'cam-a' });
  // Uploading first, then listed.
  await uploadFrame(cloud, dev.token, await makeJpeg(2), { camera: 'cam-c' });
  const [, uploaded] = await adminCameras(cloud);
  t.equal(uploaded.inventory, null, 'not listed yet');
  await sendInventory(cloud, dev.token, { cameras: [inventoryItem(), inventoryItem({ camera: 'cam-c', name: 'Back door', address: '192.168.1.21' })] });

  const cams = await adminCameras(cloud);
  t.same(
    cams.map((c) => [c.id, c.key, c.frames, c.inventory?.address]),
    [
      [listed.id, 'cam-a', 1, '192.168.1.20'],
      [uploaded.id, 'cam-c', 1, '192.168.1.21'],
    ],
  );
  // The device's own view names the camera as its inventory does.
  const mine = await http(cloud.url, 'GET', '/v1/cameras', { token: dev.token });
  t.same(
    mine.body.map((c: { key: string; name: string }) => [c.key, c.name]),
    [
      ['cam-a', 'Front door'],
      ['cam-c', 'Back door'],
    ],
  );
  t.notOk('inventory' in mine.body[0], 'the device API keeps its summary shape');
});

t.test('a camera the device no longer lists is kept, marked, and comes back when listed again', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  const b = inventoryItem({ camera: 'cam-b', name: 'Till' });
  await sendInventory(cloud, dev.token, { cameras: [inventoryItem(), b] });
  await uploadFrame(cloud, dev.token, await makeJpeg(1), { camera: 'cam-b' });

  await cloud.clock.advance(60_000);
  const dropped = cloud.clock.now();
  t.equal((await sendInventory(cloud, dev.token, { cameras: [inventoryItem()] })).status, 200);
  let cams = await adminCameras(cloud);
  t.equal(cams.length, 2, 'kept');
  t.match(cams[1], { key: 'cam-b', frames: 1, inventory: { listed: false, unlistedAt: dropped, address: '192.168.1.20', name: 'Till' } });
  t.match(cams[0].inventory, { listed: true, unlistedAt: null });

  // Still left out: it went missing from the list when it first did.
  await cloud.clock.advance(60_000);
  await sendInventory(cloud, dev.token, { cameras: [inventoryItem()] });
  t.match((await adminCameras(cloud))[1].inventory, { listed: false, unlistedAt: dropped });

  await cloud.clock.advance(60_000);
  await sendInventory(cloud, dev.token, { cameras: [inventoryItem(), b] });
  cams = await adminCameras(cloud);
  t.match(cams[1], { key: 'cam-b', frames: 1, inventory: { listed: true, unlistedAt: null, receivedAt: cloud.clock.now() } });

  // An empty list: everything unlisted, nothing deleted.
  await sendInventory(cloud, dev.token, { cameras: [] });
  cams = await adminCameras(cloud);
  t.same(
    cams.map((c) => [c.key, c.inventory.listed]),
    [
      ['cam-a', false],
      ['cam-b', false],
    ],
  );
});

t.test("one device's inventory never touches another's cameras", async (t) => {
  const cloud = await startTestCloud(t);
  const alice = await claimDevice(cloud, 'hw-alice');
  const bob = await claimDevice(cloud, 'hw-bob');
  await sendInventory(cloud, alice.token, { cameras: [inventoryItem({ address: '10.0.0.1' })] });
  await cloud.clock.advance(1_000);
  // The same key on bob's device, then bob's list without it.
  await sendInventory(cloud, bob.token, { cameras: [inventoryItem({ address: '10.9.9.9', manufacturer: 'Hikvision' })] });
  await sendInventory(cloud, bob.token, { cameras: [] });

  const cams = await adminCameras(cloud);
  const byDevice = new Map(cams.map((c) => [c.deviceId, c]));
  t.equal(cams.length, 2, 'one camera each');
  t.match(byDevice.get(alice.deviceId), { key: 'cam-a', inventory: { address: '10.0.0.1', manufacturer: 'Axis', listed: true } });
  t.match(byDevice.get(bob.deviceId), { key: 'cam-a', inventory: { address: '10.9.9.9', listed: false } });
  t.not(byDevice.get(alice.deviceId).id, byDevice.get(bob.deviceId).id);
});

t.test('a malformed inventory is 400 with the field named; nothing is stored', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud);
  const { address: _a, ...noAddress } = inventoryItem();
  const cases: [string, unknown, RegExp][] = [
    ['no cameras', {}, /^body must have required property 'cameras'$/],
    ['cameras of strings', { cameras: ['cam-a'] }, /^body\/cameras\/0 must be object$/],
    ['an array', [inventoryItem()], /^body must be object$/],
    ['too many', { cameras: Array.from({ length: MAX_INVENTORY_CAMERAS + 1 }, (_, i) => inventoryItem({ camera: `c${i}` })) }, /^body\/cameras must NOT have more than 256 items$/],
    ['missing address', { cameras: [noAddress] }, /^body\/cameras\/0 must have required property 'address'$/],
    ['empty key', { cameras: [inventoryItem({ camera: '' })] }, /^body\/cameras\/0\/camera must NOT have fewer than 1 characters$/],
    ['key too long', { cameras: [inventoryItem(), inventoryItem({ camera: 'k'.repeat(129) })] }, /^body\/cameras\/1\/camera must NOT have more than 128/],
    ['capture path', { cameras: [inventoryItem({ capturePath: 'hls' as never })] }, /^body\/cameras\/0\/capturePath must be equal to one of the allowed values$/],
    ['source', { cameras: [inventoryItem({ source: 'usb' as never })] }, /^body\/cameras\/0\/source must be equal/],
    ['present', { cameras: [inventoryItem({ present: 'yes' as never })] }, /^body\/cameras\/0\/present must be boolean$/],
    ['manufacturer too long', { cameras: [inventoryItem({ manufacturer: 'm'.repeat(201) })] }, /^body\/cameras\/0\/manufacturer must NOT have more than 200/],
    ['address too long', { cameras: [inventoryItem({ address: 'a'.repeat(301) })] }, /^body\/cameras\/0\/address must NOT have more than 300/],
    ['lastError too long', { cameras: [inventoryItem({ lastError: 'e'.repeat(1_001) })] }, /^body\/cameras\/0\/lastError must NOT have more than 1000/],
    ['lastSeenAt negative', { cameras: [inventoryItem({ lastSeenAt: -1 })] }, /^body\/cameras\/0\/lastSeenAt must be >= 0$/],
    ['a key twice', { cameras: [inventoryItem(), inventoryItem({ camera: 'cam-b' }), inventoryItem()] }, /^body\/cameras\/2\/camera "cam-a" is listed twice$/],
  ];
  for (const [name, body, message] of cases) {
    const res = await sendInventory(cloud, dev.token, body);
    t.equal(res.status, 400, name);
    t.match(res.body, { statusCode: 400, code: 'BAD_REQUEST', error: 'Bad Request', message }, name);
  }
  const huge = await sendInventory(cloud, dev.token, { cameras: [inventoryItem()], padding: 'x'.repeat(1024 * 1024) });
  t.equal(huge.status, 413);
  t.equal(huge.body.code, 'BODY_TOO_LARGE');

  t.same(await adminCameras(cloud), [], 'no refused inventory created a camera');
  const detail = await http(cloud.url, 'GET', `/admin/v1/devices/${dev.deviceId}`, { token: cloud.adminToken });
  t.equal(detail.body.inventoryReceivedAt, null);
  // Unknown fields are dropped, so a newer agent still gets through.
  t.equal((await sendInventory(cloud, dev.token, { cameras: [{ ...inventoryItem(), ptz: true }], sequence: 7 })).status, 200);

  // The largest inventory the limits allow fits within the body limit.
  const full = (i: number) =>
    inventoryItem({
      camera: `${i}`.padEnd(128, 'k'),
      name: 'n'.repeat(200),
      manufacturer: 'm'.repeat(200),
      model: 'o'.repeat(200),
      firmware: 'f'.repeat(200),
      serial: 's'.repeat(200),
      mac: 'a'.repeat(64),
      address: 'h'.repeat(300),
      lastError: 'e'.repeat(1_000),
    });
  const largest = await sendInventory(cloud, dev.token, { cameras: Array.from({ length: MAX_INVENTORY_CAMERAS }, (_, i) => full(i)) });
  t.equal(largest.status, 200, largest.body.message ?? 'accepted');
  t.equal((await adminCameras(cloud)).length, MAX_INVENTORY_CAMERAS + 1);
});

t.test('inventory auth: no token, a bad one, or a revoked one is 401; the device rate limit applies', async (t) => {
  const cloud = await startTestCloud(t, { deviceRateLimit: 3 });
  const dev = await claimDevice(cloud);
  for (const token of [undefined, 'vgl_nope']) {
    const res = await http(cloud.url, 'PUT', '/v1/cameras/inventory', { json: { cameras: [inventoryItem()] }, ...(token ? { token } : {}) });
    t.equal(res.status, 401);
    t.equal(res.body.code, 'TOKEN_INVALID');
  }
  for (let i = 0; i < 3; i++) t.equal((await sendInventory(cloud, dev.token, { cameras: [inventoryItem()] })).status, 200);
  const limited = await sendInventory(cloud, dev.token, { cameras: [inventoryItem()] });
  t.equal(limited.status, 429);
  t.equal(limited.body.code, 'RATE_LIMITED');

  t.equal((await http(cloud.url, 'POST', `/admin/v1/devices/${dev.deviceId}/revoke`, { token: cloud.adminToken })).status, 200);
  const revoked = await sendInventory(cloud, dev.token, { cameras: [] });
  t.equal(revoked.status, 401);
  t.equal((await adminCameras(cloud))[0].inventory.listed, true, 'a revoked device changed nothing');
});

t.test('camera_offline: a camera the device stopped finding is missing at once; found and capturing again closes it', async (t) => {
  const cloud = await startTestCloud(t, { cameraSilentS: 300, deviceSilentS: 600 });
  const dev = await claimDevice(cloud, 'hw-lost');
  await sendHeartbeat(cloud, dev.token, heartbeatBody());
  await uploadFrame(cloud, dev.token, await makeJpeg(1), { camera: 'cam-a', capturedAt: 1_000 });
  await sendInventory(cloud, dev.token, { cameras: [inventoryItem()] });
  t.same(await listAlerts(cloud), [], 'present and capturing: nothing');

  // Discovery lost it; the agent stops its worker and drops it from the heartbeat.
  await cloud.clock.advance(60_000);
  const lost = inventoryItem({ present: false, lastError: 'ONVIF_UNREACHABLE: no answer from 192.168.1.20' });
  t.equal((await sendInventory(cloud, dev.token, { cameras: [lost] })).status, 200);
  const [alert] = await listAlerts(cloud, 'state=open');
  t.match(alert, {
    kind: 'camera_offline',
    cameraKey: 'cam-a',
    cameraName: 'Front door',
    title: 'Camera Front door on hw-lost is missing: the device no longer finds it (last seen at 192.168.1.20)',
    detail: { reason: 'missing', address: '192.168.1.20', lastError: 'ONVIF_UNREACHABLE: no answer from 192.168.1.20' },
  });
  await sendHeartbeat(cloud, dev.token, heartbeatBody({ cameras: [] }));
  await cloud.fleet.sweep();
  t.equal((await listAlerts(cloud)).length, 1, 'still the one alert');

  // Found again, at a new address, and capturing.
  await cloud.clock.advance(60_000);
  await sendInventory(cloud, dev.token, { cameras: [inventoryItem({ address: '192.168.1.44' })] });
  t.match(await listAlerts(cloud), [{ state: 'open' }], 'found is not yet capturing');
  await sendHeartbeat(cloud, dev.token, heartbeatBody());
  await uploadFrame(cloud, dev.token, await makeJpeg(2), { camera: 'cam-a', capturedAt: 2_000 });
  t.match(await listAlerts(cloud), [{ id: alert.id, state: 'closed', resolution: 'the camera reports ok and its frames arrive' }]);
});

t.test(
  'a database from before the inventory (schema 2) is migrated forward; its cameras take an inventory',
  // It upgrades an embedded SQLite file; PostgreSQL's history starts after that version.
  { skip: process.env.VIGIL_TEST_DATABASE === 'postgres' && 'an upgrade of a SQLite file' },
  async (t) => {
    const dataDir = tempDir(t);
    const db = new Database(join(dataDir, DB_FILE));
    for (const m of MIGRATIONS.slice(0, 2)) db.exec(m);
    db.pragma('user_version = 2');
    db.prepare("INSERT INTO sites VALUES ('site_1', 'Cafe Lune', 1)").run();
    db.prepare("INSERT INTO devices (id, site_id, hardware_id, name, created_at, claimed_at) VALUES ('dev_old', 'site_1', 'hw-old', 'old pi', 1, 1)").run();
    db.prepare('INSERT INTO device_tokens VALUES (?, ?, 1, NULL)').run(sha256Hex('vgl_old-token'), 'dev_old');
    db.prepare("INSERT INTO cameras VALUES ('cam_old', 'dev_old', 'cam-a', NULL, 1)").run();
    db.close();

    const cloud = await startTestCloud(t, { dataDir });
    t.match(await adminCameras(cloud), [{ id: 'cam_old', key: 'cam-a', inventory: null }]);
    t.equal((await sendInventory(cloud, 'vgl_old-token', { cameras: [inventoryItem()] })).status, 200);
    t.match(await adminCameras(cloud), [{ id: 'cam_old', key: 'cam-a', name: 'Front door', inventory: { manufacturer: 'Axis', listed: true } }]);
  },
);
