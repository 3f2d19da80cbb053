import type { AppContext } from '../context.js';
import type { CameraWatch } from '../store/fleet-types.js';
import type { CameraWithStats, DeviceRecord, FrameRecord } from '../store/types.js';
import { ago, esc, page, time } from './layout.js';
import { adminFrameImagePath } from '../routes/frames.js';

const STATE_CLASS: Record<string, string> = { ok: 'ok', failing: 'bad', stopped: 'warn' };

/**
 * /cameras — every camera, grouped by device: what the device's inventory says (maker, model,
 * address, MAC, capture path), whether discovery still finds it, what the heartbeat says about
 * capturing, and its last frame (the newest compressed one, as a picture). ?device= narrows to
 * one device (linked from /devices).
 */
export async function renderCameras(ctx: AppContext, deviceId: string | undefined): Promise<string> {
  const now = ctx.now();
  const { store } = ctx;
  const [devices, cameras, watch, open] = await Promise.all([
    store.listDevices(),
    store.listCameras(deviceId),
    store.fleet.cameraWatch(deviceId),
    store.alerts.openAlerts(deviceId),
  ]);
  const shown = deviceId === undefined ? devices : devices.filter((d) => d.id === deviceId);
  const reported = new Map(watch.map((w) => [w.cameraId, w.reported]));
  const alerts = new Map<string, number>();
  for (const a of open) if (a.cameraId) alerts.set(a.cameraId, (alerts.get(a.cameraId) ?? 0) + 1);
  const latest = new Map<string, FrameRecord>();
  for (const c of cameras) {
    const [f] = await store.listFrames(c.id, { limit: 1, variant: 'compressed' });
    if (f) latest.set(c.id, f);
  }

  const sections = shown.map((d) => {
    const mine = cameras.filter((c) => c.deviceId === d.id).sort(byInventoryThenName);
    const rows = mine.map((c) => row(c, reported.get(c.id) ?? null, alerts.get(c.id) ?? 0, latest.get(c.id) ?? null, now)).join('');
    return `<section>${heading(d, mine, now)}<table><tr><th>camera</th><th>maker</th><th>model</th><th>address</th><th>MAC</th>
      <th>capture</th><th>status</th><th>last error</th><th>last frame</th></tr>${rows || '<tr><td colspan="9">No cameras.</td></tr>'}</table></section>`;
  });
  const scope = deviceId === undefined ? '' : ` <small>of one device (<a href="/cameras">all devices</a>)</small>`;
  const empty = deviceId === undefined ? '<p>No devices.</p>' : `<p>No device <code>${esc(deviceId)}</code>.</p>`;
  return page('Vigil — cameras', `<style>.latest-frame img{width:160px;max-width:40vw}</style><h2>Cameras (${cameras.length})${scope}</h2>${sections.join('') || empty}`);
}

function heading(d: DeviceRecord, cameras: CameraWithStats[], now: number): string {
  const missing = cameras.filter((c) => c.inventory?.listed && !c.inventory.present).length;
  const inventory = d.inventoryReceivedAt === null ? 'no inventory received' : `inventory received ${ago(d.inventoryReceivedAt, now)}`;
  const counts = `${cameras.length} camera${cameras.length === 1 ? '' : 's'}${missing ? `, <span class="bad">${missing} missing</span>` : ''}`;
  return `<h3>${esc(d.site)} / ${esc(d.name)} <small><code>${esc(d.id)}</code> — ${counts}; ${inventory} ·
    <a href="/alerts?device=${encodeURIComponent(d.id)}">alerts</a></small></h3>`;
}

function row(c: CameraWithStats, reported: CameraWatch['reported'], openAlerts: number, frame: FrameRecord | null, now: number): string {
  const inv = c.inventory;
  const opt = (v: string | null | undefined) => (v ? esc(v) : '—');
  const camera = `${esc(c.name || inv?.name || c.key)}<br><small><code>${esc(c.key)}</code>${inv ? ` · ${esc(inv.source)}` : ''}</small>`;
  const model = `${opt(inv?.model)}${inv?.firmware ? `<br><small>firmware ${esc(inv.firmware)}</small>` : ''}${inv?.serial ? `<br><small>serial ${esc(inv.serial)}</small>` : ''}`;
  const capture = reported ? `<br><small>capture <span class="${STATE_CLASS[reported.state] ?? ''}">${esc(reported.state)}</span></small>` : '';
  const alerts = openAlerts ? `<br><a class="open" href="/alerts?device=${encodeURIComponent(c.deviceId)}">${openAlerts} open</a>` : '';
  const error = inv?.lastError ?? reported?.lastError ?? null;
  return `<tr><td>${camera}</td><td>${opt(inv?.manufacturer)}</td><td>${model}</td><td>${opt(inv?.address)}</td><td>${opt(inv?.mac)}</td>
    <td>${opt(inv?.capturePath)}</td><td>${status(c, now)}${capture}${alerts}</td><td>${error ? `<small class="bad">${esc(error)}</small>` : '—'}</td>
    <td>${latestFrame(frame)}${ago(c.lastCapturedAt, now)}<br><small>${c.frames} frame${c.frames === 1 ? '' : 's'}</small></td></tr>`;
}

/** The newest compressed frame, small, linking to full size. */
export function latestFrame(f: FrameRecord | null): string {
  if (!f) return '';
  const url = adminFrameImagePath(f.id);
  return `<a href="${url}" class="latest-frame"><img src="${url}" alt="latest frame, ${time(f.capturedAt)}" data-frame-id="${esc(f.id)}"></a>`;
}

/** Present / missing as the device's latest inventory says; or why the inventory says nothing. */
function status(c: CameraWithStats, now: number): string {
  const inv = c.inventory;
  if (inv === null) return '<small>not in the inventory</small>';
  if (!inv.listed) return `<span class="warn">removed from the inventory</span> <small>${ago(inv.unlistedAt, now)}</small>`;
  if (!inv.present) return `<span class="bad">missing</span><br><small>last seen ${ago(inv.lastSeenAt, now)}</small>`;
  return '<span class="ok">present</span>';
}

/** Cameras the inventory lists first, then those it dropped, then those it never listed; by name within. */
function byInventoryThenName(a: CameraWithStats, b: CameraWithStats): number {
  const rank = (c: CameraWithStats) => (c.inventory === null ? 2 : c.inventory.listed ? 0 : 1);
  const label = (c: CameraWithStats) => c.name || c.key;
  return rank(a) - rank(b) || label(a).localeCompare(label(b));
}
