import t from 'tap';
import { claimDevice, heartbeatBody, http, inventoryItem, loginDashboard, makeJpeg, sendHeartbeat, sendInventory, startTestCloud, uploadFrame } from './helpers.js';

// The dashboard's /cameras page, rendered by a real cloud: inventory fields per camera,
// grouped by device, everything from a device escaped.

/** The table row of the camera with this key (rows are split on <tr>). */
function rowOf(html: string, key: string): string {
  const row = html.split('<tr>').find((r) => r.includes(`<code>${key}</code>`));
  if (!row) throw new Error(`no row for ${key}`);
  return row;
}

t.test('the cameras page: maker, model, address, MAC, capture path and status per camera, grouped by device', async (t) => {
  const cloud = await startTestCloud(t);
  const dev = await claimDevice(cloud, 'hw-<cams>', 'Bistro');
  const other = await claimDevice(cloud, 'hw-other', 'Bistro');
  await uploadFrame(cloud, dev.token, await makeJpeg(1), { camera: 'cam-a' });
  await uploadFrame(cloud, dev.token, await makeJpeg(2), { camera: 'cam-c' });
  const axis = inventoryItem({ manufacturer: 'Axis <Pro>', model: 'M3106 & co', mac: 'ac:cc:8e:12:34:56', address: '192.168.1.20' });
  const lost = inventoryItem({
    camera: 'cam-b',
    name: 'Till',
    manufacturer: 'Hikvision',
    model: 'DS-2CD2043',
    mac: '44:19:b6:00:00:01',
    address: '10.0.0.9',
    capturePath: 'snapshot',
    present: false,
    lastError: 'ONVIF_AUTH_FAILED: <wrong> password',
  });
  const gone = inventoryItem({ camera: 'cam-d', name: 'Old porch', manufacturer: 'Dahua' });
  await sendInventory(cloud, dev.token, { cameras: [axis, lost, gone] });
  await cloud.clock.advance(60_000);
  await sendInventory(cloud, dev.token, { cameras: [axis, lost] });
  await sendHeartbeat(cloud, dev.token, heartbeatBody());
  await sendInventory(cloud, other.token, { cameras: [inventoryItem({ camera: 'cam-x', name: 'Cellar', manufacturer: 'Reolink' })] });
  await cloud.clock.advance(60_000);

  const anon = await http(cloud.url, 'GET', '/cameras');
  t.equal(anon.headers.location, '/login?next=%2Fcameras', 'needs the login');
  t.notMatch(anon.raw.toString(), /Axis/);

  const cookie = await loginDashboard(cloud);
  const res = await http(cloud.url, 'GET', '/cameras', { headers: { cookie } });
  t.equal(res.status, 200);
  const html = res.raw.toString();
  t.notMatch(html, /<script|Axis <Pro>|<wrong>/, 'nothing from a device reaches the page unescaped');
  t.match(html, /<h2>Cameras \(5\)/);

  const a = rowOf(html, 'cam-a');
  for (const text of ['Front door', 'Axis &#60;Pro&#62;', 'M3106 &#38; co', '192.168.1.20', 'ac:cc:8e:12:34:56', 'rtsp', 'class="ok">present', 'capture <span class="ok">ok', '1 frame<']) {
    t.ok(a.includes(text), `cam-a shows ${text}`);
  }
  const b = rowOf(html, 'cam-b');
  for (const text of ['Till', 'Hikvision', 'DS-2CD2043', '10.0.0.9', '44:19:b6:00:00:01', 'snapshot', 'class="bad">missing', 'ONVIF_AUTH_FAILED: &#60;wrong&#62; password', '0 frames']) {
    t.ok(b.includes(text), `cam-b shows ${text}`);
  }
  t.ok(b.includes('1 open'), 'and its open camera_offline alert');
  t.match(rowOf(html, 'cam-d'), /removed from the inventory<\/span> <small><span title="[^"]+">1 min ago/);
  t.match(rowOf(html, 'cam-c'), /not in the inventory/);

  // Grouped by device: each heading, then that device's cameras (listed ones first).
  const mine = html.indexOf('hw-&#60;cams&#62;');
  const theirs = html.indexOf('hw-other');
  // Devices in site, then name order: "hw-<cams>" sorts before "hw-other".
  const order = [mine, ...['cam-a', 'cam-b', 'cam-d', 'cam-c'].map((k) => html.indexOf(`<code>${k}</code>`)), theirs, html.indexOf('<code>cam-x</code>')];
  t.ok(order.every((p) => p > 0));
  t.same([...order].sort((x, y) => x - y), order, 'under each device its cameras: listed, then dropped, then never listed');
  t.match(html, /1 missing/);

  const one = (await http(cloud.url, 'GET', `/cameras?device=${encodeURIComponent(other.deviceId)}`, { headers: { cookie } })).raw.toString();
  t.match(one, /Cellar/);
  t.match(one, /Reolink/);
  t.notMatch(one, /Hikvision|hw-&#60;cams&#62;/, 'one device only');
  const none = (await http(cloud.url, 'GET', '/cameras?device=dev_%3Cnope%3E', { headers: { cookie } })).raw.toString();
  t.match(none, /No device <code>dev_&#60;nope&#62;<\/code>/);

  const devices = (await http(cloud.url, 'GET', '/devices', { headers: { cookie } })).raw.toString();
  t.match(devices, new RegExp(`href="/cameras\\?device=${dev.deviceId}">cameras</a>`), 'the devices page links to each device’s cameras');
  t.match(devices, /<nav>.*href="\/cameras">Cameras<\/a>/);
});
