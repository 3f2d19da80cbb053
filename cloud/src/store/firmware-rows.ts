import { ROLLOUT_STATES, type DeploymentRecord, type DeviceUpdate, type ReleaseRecord, type RolloutDevice, type RolloutState } from './firmware-types.js';
import type { Row } from './sqlite-rows.js';

// Firmware rows to records, for both stores: the two schemas have the same columns, and
// PostgreSQL's BIGINTs come back as numbers (pg-db.ts), so one set of mappers serves both.

export function toRelease(r: Row): ReleaseRecord {
  return {
    id: r.id as string,
    version: r.version as string,
    bytes: r.bytes as number,
    sha256: r.sha256 as string,
    objectKey: r.object_key as string,
    verified: r.verified === 1,
    createdAt: r.created_at as number,
  };
}

export function toDeployment(r: Row): DeploymentRecord {
  return {
    id: r.id as string,
    releaseId: r.release_id as string,
    siteId: (r.site_id as string | null) ?? null,
    maxConcurrent: r.max_concurrent as number,
    failureThreshold: r.failure_threshold as number,
    state: r.state as 'active' | 'halted',
    haltReason: (r.halt_reason as string | null) ?? null,
    haltedAt: (r.halted_at as number | null) ?? null,
    createdAt: r.created_at as number,
  };
}

export function toRollout(r: Row): RolloutDevice {
  return {
    deviceId: r.device_id as string,
    state: r.state as RolloutState,
    reason: (r.reason as string | null) ?? null,
    startedAt: (r.started_at as number | null) ?? null,
    updatedAt: r.updated_at as number,
    reportedAt: (r.reported_at as number | null) ?? null,
  };
}

/** A rollout row joined with its deployment's release_id and the release's version. */
export function toDeviceUpdate(r: Row): DeviceUpdate {
  return { ...toRollout(r), deploymentId: r.deployment_id as string, releaseId: r.release_id as string, version: r.version as string };
}

/** A deployment's per-state counts, every state present. */
export function countStates(devices: readonly RolloutDevice[]): Record<RolloutState, number> {
  return Object.fromEntries(ROLLOUT_STATES.map((st) => [st, devices.filter((d) => d.state === st).length])) as Record<RolloutState, number>;
}

/** The reason a deployment halts when its failures reach the threshold. */
export function thresholdHaltReason(failures: number, threshold: number, deviceId: string, state: RolloutState, reason: string | null): string {
  const why = reason ? `: ${reason}` : '';
  return `${failures} device(s) failed or reverted, threshold ${threshold}; last: ${deviceId} ${state}${why}`;
}
