import type { AppContext } from '../context.js';
import type { DeviceHealth } from '../store/fleet-types.js';
import { ago, esc, page } from './layout.js';
import { deviceUpdate } from './update-status.js';

const VERDICT_CLASS: Record<string, string> = { nominal: 'ok', self_healed: 'warn', rolled_back: 'warn', needs_human: 'bad' };

/**
 * /devices — each device's latest heartbeat (verdict, running firmware and slot, queue,
 * cameras), its latest firmware update (state, reason, time) and its open alerts.
 */
export async function renderDevices(ctx: AppContext): Promise<string> {
  const now = ctx.now();
  const [devices, open, updates] = await Promise.all([ctx.store.fleet.fleetDevices(), ctx.store.alerts.openAlerts(), ctx.store.firmware.deviceUpdates()]);
  const updateOf = new Map(updates.map((u) => [u.deviceId, u]));
  const rows = devices
    .map(({ device: d, health: h }) => {
      const alerts = open.filter((a) => a.deviceId === d.id).length;
      const state = d.revokedAt !== null ? '<span class="bad">revoked</span>' : 'active';
      const cameras = `<a href="/cameras?device=${encodeURIComponent(d.id)}">cameras</a>`;
      const label = `<a href="/devices/${encodeURIComponent(d.id)}/label">label</a>`;
      return `<tr><td>${esc(d.site)}</td><td>${esc(d.name)}<br><small><code>${esc(d.id)}</code> · ${cameras} · ${label}</small>${local(h)}</td><td>${state}</td>
        <td>${ago(d.lastSeenAt, now)}</td><td>${ago(h?.receivedAt ?? null, now)}</td>${health(h)}<td>${deviceUpdate(updateOf.get(d.id), now)}</td>
        <td>${alerts ? `<a class="open" href="/alerts?device=${encodeURIComponent(d.id)}">${alerts} open</a>` : '—'}</td></tr>`;
    })
    .join('');
  return page(
    'Vigil — devices',
    `<h2>Devices (${devices.length})</h2><p><a href="/devices/new">Add a device</a> (a claim code for a technician's card)</p><table><tr><th>site</th><th>device</th><th>state</th><th>last seen</th><th>last heartbeat</th>
     <th>verdict</th><th>firmware</th><th>agent</th><th>queue</th><th>cameras</th><th>update</th><th>alerts</th></tr>${rows}</table>`,
  );
}

/** Where a technician finds the device on its LAN, and the PIN its status page asks for. */
function local(h: DeviceHealth | null): string {
  const l = h?.local;
  if (!l) return '';
  const url = `http://${l.hostName}.local${l.port === 80 ? '' : `:${l.port}`}/`;
  const addresses = l.addresses.length ? ` · ${l.addresses.map(esc).join(', ')}` : '';
  return `<br><small>status page <code>${esc(url)}</code>${addresses} · setup PIN <code class="pin">${esc(l.setupPin)}</code></small>`;
}

function health(h: DeviceHealth | null): string {
  if (!h) return '<td colspan="5"><small>no heartbeat yet</small></td>';
  const verdict = `<span class="${VERDICT_CLASS[h.verdict] ?? ''}">${esc(h.verdict)}</span>${h.verdictReason ? `<br><small>${esc(h.verdictReason)}</small>` : ''}`;
  const firmware = `${esc(h.firmwareVersion ?? '—')}${h.firmwareSlot ? ` <small>slot ${esc(h.firmwareSlot)}</small>` : ''}`;
  const oldest = h.oldestQueuedAgeMs === null ? '' : ` <small>oldest ${Math.round(h.oldestQueuedAgeMs / 60_000)} min</small>`;
  const c = h.cameras;
  const cameras = `${c.ok}/${c.total} ok${c.failing ? ` <span class="bad">${c.failing} failing</span>` : ''}${c.stopped ? ` <span class="warn">${c.stopped} stopped</span>` : ''}`;
  return `<td>${verdict}</td><td>${firmware}</td><td>${esc(h.agentVersion)}</td><td>${h.queueDepth}${oldest}</td><td>${cameras}</td>`;
}
