import type { AppContext } from '../context.js';
import { ROLLOUT_STATES, type DeploymentDetail, type ReleaseRecord } from '../store/firmware-types.js';
import type { DeviceRecord } from '../store/types.js';
import { ago, esc, page } from './layout.js';
import { phaseOf, stateBadge } from './update-status.js';

const DEPLOYMENTS_SHOWN = 50;
const SHA_PREFIX = 12;
const PHASE_CLASS = { active: 'warn', halted: 'bad', finished: 'ok' } as const;

/**
 * /firmware — releases (size, sha256, signature checked or not) and the newest deployments:
 * target, state (active, halted with its reason, or finished), limits, how many devices are in
 * each update state, and per device its state and reason.
 */
export async function renderFirmware(ctx: AppContext): Promise<string> {
  const now = ctx.now();
  const fw = ctx.store.firmware;
  const [releases, deployments, devices, sites] = await Promise.all([fw.listReleases(), fw.listDeployments(DEPLOYMENTS_SHOWN), ctx.store.listDevices(), ctx.store.listSites()]);
  const byId = new Map(devices.map((d) => [d.id, d]));
  const siteName = new Map(sites.map((s) => [s.id, s.name]));
  const releaseRows = releases.map((r) => releaseRow(r, now)).join('');
  const deploymentRows = deployments.map((d) => deploymentRow(d, byId, siteName, now)).join('');
  return page(
    'Vigil — firmware',
    `<h2>Releases (${releases.length})</h2><table><tr><th>version</th><th>size</th><th>sha256</th><th>uploaded</th><th>signature</th></tr>
     ${releaseRows || '<tr><td colspan="5">No releases.</td></tr>'}</table>
     <h2>Deployments (${deployments.length})</h2><table><tr><th>release</th><th>target</th><th>state</th><th>max concurrent</th>
     <th>failure threshold</th><th>devices</th><th>created</th></tr>${deploymentRows || '<tr><td colspan="7">No deployments.</td></tr>'}</table>`,
  );
}

function releaseRow(r: ReleaseRecord, now: number): string {
  const signature = r.verified ? '<span class="ok">verified</span>' : '<span class="warn">not checked</span> <small>(no keyring)</small>';
  return `<tr><td>${esc(r.version)}<br><small><code>${esc(r.id)}</code></small></td><td><span title="${r.bytes} bytes">${size(r.bytes)}</span></td>
    <td><code title="${esc(r.sha256)}">${esc(r.sha256.slice(0, SHA_PREFIX))}…</code></td><td>${ago(r.createdAt, now)}</td><td>${signature}</td></tr>`;
}

function deploymentRow(d: DeploymentDetail, devices: Map<string, DeviceRecord>, siteName: Map<string, string>, now: number): string {
  const phase = phaseOf(d);
  const halted = d.state === 'halted' ? `<br><small class="bad">${esc(d.haltReason ?? '')}</small><br><small>halted ${ago(d.haltedAt, now)}</small>` : '';
  const label = (id: string) => {
    const dev = devices.get(id);
    return dev ? `${esc(dev.site)} / ${esc(dev.name)}` : `<code>${esc(id)}</code>`;
  };
  const n = d.devices.length;
  const target = d.siteId !== null ? `site ${esc(siteName.get(d.siteId) ?? d.siteId)}` : `${n} device${n === 1 ? '' : 's'}: ${d.devices.map((x) => label(x.deviceId)).join(', ')}`;
  const counts = ROLLOUT_STATES.filter((s) => d.counts[s] > 0)
    .map((s) => `${d.counts[s]} ${stateBadge(s)}`)
    .join(', ');
  const perDevice = d.devices
    .map((x) => `<tr><td>${label(x.deviceId)}</td><td>${stateBadge(x.state)}</td><td>${x.reason ? esc(x.reason) : '—'}</td><td>${ago(x.updatedAt, now)}</td></tr>`)
    .join('');
  const detail = `<details><summary>per device</summary><table><tr><th>device</th><th>state</th><th>reason</th><th>updated</th></tr>${perDevice}</table></details>`;
  return `<tr id="${esc(d.id)}"><td>${esc(d.release.version)}<br><small><code>${esc(d.id)}</code></small></td><td>${target}</td>
    <td><span class="${PHASE_CLASS[phase]}">${phase}</span>${halted}</td><td>${d.maxConcurrent}</td><td>${d.failureThreshold}</td>
    <td>${n} total${counts ? `: ${counts}` : ''}${detail}</td><td>${ago(d.createdAt, now)}</td></tr>`;
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
