import { FINAL_STATES, type DeploymentDetail, type DeviceUpdate, type DeviceUpdates, type RolloutState } from '../store/firmware-types.js';
import { ago, esc } from './layout.js';

// How the dashboard shows firmware rollout states: on /firmware per deployment, on /devices per device.

const STATE_CLASS: Record<RolloutState, string> = {
  waiting: '',
  started: 'warn',
  downloading: 'warn',
  installing: 'warn',
  trial: 'warn',
  committed: 'ok',
  reverted: 'bad',
  failed: 'bad',
};

export type DeploymentPhase = 'active' | 'halted' | 'finished';

/** The store keeps active or halted; an active one whose devices are all final is finished. */
export function phaseOf(d: DeploymentDetail): DeploymentPhase {
  if (d.state === 'halted') return 'halted';
  return d.devices.every((x) => FINAL_STATES.includes(x.state)) ? 'finished' : 'active';
}

export function stateBadge(state: RolloutState): string {
  const cls = STATE_CLASS[state];
  return cls ? `<span class="${cls}">${esc(state)}</span>` : esc(state);
}

/** "2025.02.1 reverted 3 min ago" and the reason, linked to its deployment on /firmware. */
export function deviceUpdate(u: DeviceUpdates | undefined, now: number): string {
  if (!u) return '—';
  const previous = u.previous ? `<br><small>before: ${oneUpdate(u.previous, now)}</small>` : '';
  return `${oneUpdate(u.current, now)}${previous}`;
}

function oneUpdate(u: DeviceUpdate, now: number): string {
  const reason = u.reason ? `<br><small class="${STATE_CLASS[u.state] || ''}">${esc(u.reason)}</small>` : '';
  return `<a href="/firmware#${encodeURIComponent(u.deploymentId)}">${esc(u.version)}</a> ${stateBadge(u.state)} ${ago(u.updatedAt, now)}${reason}`;
}
