import type { AppContext } from '../context.js';
import type { AlertRecord } from '../store/alert-types.js';
import { ago, esc, page, time } from './layout.js';

const ALERTS_SHOWN = 200;

/** /alerts — fleet alerts, open first, newest first; ?device= narrows to one device. */
export async function renderAlerts(ctx: AppContext, deviceId: string | undefined): Promise<string> {
  const now = ctx.now();
  const alerts = await ctx.store.alerts.listAlerts({ deviceId, limit: ALERTS_SHOWN });
  const open = alerts.filter((a) => a.state === 'open').length;
  const watch = ctx.fleet.status();
  const rows = alerts.map((a) => row(a, now)).join('');
  return page(
    'Vigil — alerts',
    `<h2>Alerts <small>${open} open${deviceId ? ` for <code>${esc(deviceId)}</code> (<a href="/alerts">all devices</a>)` : ''}</small></h2>
     <p><small>Fleet watch: last sweep ${ago(watch.lastSweepAt, now)}${watch.lastError ? ` — <span class="bad">${esc(watch.lastError)}</span>` : ''}</small></p>
     <table><tr><th>state</th><th>opened</th><th>kind</th><th>device</th><th>camera</th><th>alert</th></tr>${rows || '<tr><td colspan="6">No alerts.</td></tr>'}</table>`,
  );
}

function row(a: AlertRecord, now: number): string {
  const state = a.state === 'open' ? '<span class="open">open</span>' : `closed ${ago(a.closedAt, now)}<br><small>${esc(a.resolution ?? '')}</small>`;
  const camera = a.cameraId ? esc(a.cameraName || a.cameraKey || a.cameraId) : '—';
  const diagnosis = a.diagnosis ? `<details><summary>Diagnosis (model, advisory)</summary><pre>${esc(a.diagnosis)}</pre></details>` : '';
  const detail = `<details><summary>Detail</summary><pre>${esc(JSON.stringify(a.detail, null, 2))}</pre></details>`;
  return `<tr><td>${state}</td><td><span title="${time(a.openedAt)}">${ago(a.openedAt, now)}</span></td><td>${esc(a.kind)}</td>
    <td>${esc(a.site)} / ${esc(a.deviceName)}</td><td>${camera}</td><td>${esc(a.title)}${diagnosis}${detail}</td></tr>`;
}
