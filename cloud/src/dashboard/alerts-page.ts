import type { AppContext } from '../context.js';
import type { AlertRecord } from '../store/alert-types.js';
import { ago, esc, page, time } from './layout.js';
import { LIVE_INDICATOR, LIVE_SCRIPT_TAG, LIVE_STYLE } from './live-script.js';

const ALERTS_SHOWN = 200;

/**
 * /alerts — fleet and scene alerts, open first, newest first; ?device= narrows to one device.
 * An open alert nobody has acknowledged has an Acknowledge button (POST /alerts/:id/ack,
 * routes/dashboard-live.ts); the live script keeps the rows current.
 */
export async function renderAlerts(ctx: AppContext, deviceId: string | undefined): Promise<string> {
  const now = ctx.now();
  const alerts = await ctx.store.alerts.listAlerts({ deviceId, limit: ALERTS_SHOWN });
  const open = alerts.filter((a) => a.state === 'open').length;
  const watch = ctx.fleet.status();
  const back = deviceId ? `/alerts?device=${encodeURIComponent(deviceId)}` : '/alerts';
  return page(
    'Vigil — alerts',
    `${LIVE_STYLE}<h2>Alerts <small>${open} open${deviceId ? ` for <code>${esc(deviceId)}</code> (<a href="/alerts">all devices</a>)` : ''}</small> ${LIVE_INDICATOR}</h2>
     <p><small>Fleet watch: last sweep ${ago(watch.lastSweepAt, now)}${watch.lastError ? ` — <span class="bad">${esc(watch.lastError)}</span>` : ''}</small></p>
     ${alertTable(alerts, now, back, 'No alerts.', deviceId)}${LIVE_SCRIPT_TAG}`,
  );
}

/**
 * A table of alerts, one row each, in the shape the live script fills (its cells' classes);
 * `back` is where acknowledging leads back to (a local path). With `deviceId`, the script adds
 * only that device's new alerts.
 */
export function alertTable(alerts: AlertRecord[], now: number, back: string, empty: string, deviceId?: string): string {
  const rows = alerts.map((a) => alertRow(a, now, back)).join('');
  return `<table class="alerts" data-live-alerts${deviceId ? ` data-device="${esc(deviceId)}"` : ''}><tr><th>state</th><th>level</th><th>opened</th><th>kind</th><th>device</th><th>camera</th><th>alert</th><th>acknowledged</th></tr>${
    rows || `<tr class="none"><td colspan="8">${esc(empty)}</td></tr>`
  }</table>`;
}

function alertRow(a: AlertRecord, now: number, back: string): string {
  const camera = a.cameraId ? esc(a.cameraName || a.cameraKey || a.cameraId) : '—';
  const diagnosis = a.diagnosis ? `<details><summary>Diagnosis (model, advisory)</summary><pre>${esc(a.diagnosis)}</pre></details>` : '';
  const detail = `<details><summary>Detail</summary><pre>${esc(JSON.stringify(a.detail, null, 2))}</pre></details>`;
  const events = a.kind === 'scene' ? `<br><small><a href="/events?camera=${encodeURIComponent(a.cameraId ?? '')}">${a.eventCount} event${a.eventCount === 1 ? '' : 's'}</a>, last ${ago(a.lastEventAt, now)}</small>` : '';
  return `<tr id="alert-${esc(a.id)}" data-alert-id="${esc(a.id)}" data-alert-state="${a.state}"><td class="alert-state">${alertState(a, now)}</td><td class="alert-level">${levelBadge(a.level)}</td>
    <td class="alert-opened">${ago(a.openedAt, now)}</td><td class="alert-kind">${esc(a.kind)}</td>
    <td class="alert-device">${esc(a.site)} / ${esc(a.deviceName)}</td><td class="alert-camera">${camera}</td><td><span class="alert-title">${esc(a.title)}</span>${events}${diagnosis}${detail}</td>
    <td class="alert-ack">${ackCell(a, back)}</td></tr>`;
}

export function alertState(a: AlertRecord, now: number): string {
  return a.state === 'open' ? '<span class="open">open</span>' : `closed ${ago(a.closedAt, now)}${a.resolution ? `<br><small>${esc(a.resolution)}</small>` : ''}`;
}

/** Who acknowledged it and when; or, while it is open and nobody has, the button. */
export function ackCell(a: AlertRecord, back: string): string {
  if (a.acknowledgedBy !== null) return `<span class="ok">acknowledged by ${esc(a.acknowledgedBy)}</span><br><small>${time(a.acknowledgedAt)}</small>`;
  if (a.state === 'open') return ackForm(a.id, back);
  return '—';
}

export function ackForm(alertId: string, back: string): string {
  return `<form method="post" action="/alerts/${encodeURIComponent(alertId)}/ack" class="ack"><input type="hidden" name="back" value="${esc(back)}"><button type="submit">Acknowledge</button></form>`;
}

export function levelBadge(level: string): string {
  return `<span class="badge lvl-${esc(level)}">${esc(level)}</span>`;
}
