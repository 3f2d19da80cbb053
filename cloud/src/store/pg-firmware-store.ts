import type pg from 'pg';
import { countStates, thresholdHaltReason, toDeployment, toDeviceUpdate, toRelease, toRollout } from './firmware-rows.js';
import {
  FAILED_STATES,
  FINAL_STATES,
  IN_PROGRESS_STATES,
  type DeploymentDetail,
  type DeploymentRecord,
  type DeviceTarget,
  type DeviceUpdates,
  type FirmwareStore,
  type NewDeployment,
  type ReleaseRecord,
  type RolloutDevice,
  type RolloutState,
  type StatusInput,
  type StatusResult,
} from './firmware-types.js';
import { all, inTransaction, one, run, type PgClient, type Queryable, type Row } from './pg-db.js';

/**
 * Newest first. SQLite breaks a tie of created_at (same millisecond) by rowid, which
 * PostgreSQL does not have; the id breaks it here, so every replica and every query agrees on
 * which of two such deployments a device follows.
 */
const NEWEST_DEPLOYMENT_FIRST = 'd.created_at DESC, d.id DESC';
const HALT = `UPDATE firmware_deployments SET state = 'halted', halt_reason = coalesce(halt_reason, $1), halted_at = coalesce(halted_at, $2)
  WHERE id = $3 RETURNING *`;
const ROLLOUT_STATE = 'SELECT state FROM firmware_rollout WHERE deployment_id = $1 AND device_id = $2';

/**
 * Releases, deployments and rollouts in PostgreSQL, shared by every cloud replica.
 *
 * A rollout's limits are decided by read-then-write: count the devices in progress, then
 * start one; count the failures, then halt. Replicas answer devices at the same time, so every
 * such decision first locks the deployment's row (FOR UPDATE): decisions about one deployment
 * run one at a time, each seeing the last one's result, and reports and update checks for
 * different deployments do not wait for each other. The lock is always the first one taken
 * (deployment, then rollout rows), so two of these transactions cannot deadlock.
 */
export class PgFirmwareStore implements FirmwareStore {
  constructor(readonly pool: pg.Pool) {}

  async createRelease(r: ReleaseRecord): Promise<boolean> {
    const inserted = await run(
      this.pool,
      `INSERT INTO firmware_releases (id, version, bytes, sha256, object_key, verified, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (version) DO NOTHING`,
      [r.id, r.version, r.bytes, r.sha256, r.objectKey, r.verified ? 1 : 0, r.createdAt],
    );
    return inserted === 1;
  }

  async getRelease(id: string): Promise<ReleaseRecord | null> {
    const r = await one(this.pool, 'SELECT * FROM firmware_releases WHERE id = $1', [id]);
    return r ? toRelease(r) : null;
  }

  async releaseByVersion(version: string): Promise<ReleaseRecord | null> {
    const r = await one(this.pool, 'SELECT * FROM firmware_releases WHERE version = $1', [version]);
    return r ? toRelease(r) : null;
  }

  async listReleases(): Promise<ReleaseRecord[]> {
    return (await all(this.pool, 'SELECT * FROM firmware_releases ORDER BY created_at DESC, id DESC')).map(toRelease);
  }

  async createDeployment(d: NewDeployment): Promise<DeploymentRecord> {
    return inTransaction(this.pool, async (c) => {
      const row = await one(
        c,
        `INSERT INTO firmware_deployments (id, release_id, site_id, max_concurrent, failure_threshold, state, created_at)
         VALUES ($1, $2, $3, $4, $5, 'active', $6) RETURNING *`,
        [d.id, d.releaseId, d.siteId, d.maxConcurrent, d.failureThreshold, d.now],
      );
      // seq is the device's place in the given list (0-based, as SQLite numbers it).
      await run(
        c,
        `INSERT INTO firmware_rollout (deployment_id, device_id, seq, state, updated_at)
         SELECT $1, u.device_id, u.n - 1, 'waiting', $2 FROM unnest($3::text[]) WITH ORDINALITY AS u(device_id, n)`,
        [d.id, d.now, d.deviceIds],
      );
      return toDeployment(row!);
    });
  }

  async getDeployment(id: string): Promise<DeploymentDetail | null> {
    return snapshot(this.pool, async (c) => (await details(c, await all(c, 'SELECT * FROM firmware_deployments WHERE id = $1', [id])))[0] ?? null);
  }

  async listDeployments(limit: number): Promise<DeploymentDetail[]> {
    return snapshot(this.pool, async (c) => details(c, await all(c, `SELECT * FROM firmware_deployments d ORDER BY ${NEWEST_DEPLOYMENT_FIRST} LIMIT $1`, [limit])));
  }

  async deviceUpdates(): Promise<DeviceUpdates[]> {
    return snapshot(this.pool, async (c) => {
      // Per device, its newest reported row, and its row in its newest deployment (the one it follows).
      const reported = new Map((await all(c, newestRolloutPerDevice('WHERE r.reported_at IS NOT NULL'))).map((r) => [r.device_id as string, toDeviceUpdate(r)]));
      return (await all(c, newestRolloutPerDevice(''))).map((r): DeviceUpdates => {
        const current = toDeviceUpdate(r);
        const last = reported.get(current.deviceId);
        const previous = current.reportedAt === null && last && last.deploymentId !== current.deploymentId ? last : null;
        return { deviceId: current.deviceId, current, previous };
      });
    });
  }

  async haltDeployment(id: string, reason: string, now: number): Promise<boolean> {
    // One statement: the first reason is kept (it says why the rollout stopped).
    return (await run(this.pool, HALT, [reason, now, id])) === 1;
  }

  async targetFor(deviceId: string, now: number): Promise<DeviceTarget | null> {
    return inTransaction(this.pool, async (c): Promise<DeviceTarget | null> => {
      const newest = await one(
        c,
        `SELECT r.deployment_id, r.state, d.release_id
         FROM firmware_rollout r JOIN firmware_deployments d ON d.id = r.deployment_id
         WHERE r.device_id = $1 ORDER BY ${NEWEST_DEPLOYMENT_FIRST} LIMIT 1`,
        [deviceId],
      );
      if (!newest) return null;
      const deploymentId = newest.deployment_id as string;
      let state = newest.state as RolloutState;
      if (state === 'waiting') {
        // Taking a slot: the deployment's lock orders this against every other slot taken,
        // report and halt in the deployment. What was read before the lock is read again:
        // another replica may just have started this very device, or halted the deployment.
        const dep = (await one(c, 'SELECT state, max_concurrent FROM firmware_deployments WHERE id = $1 FOR UPDATE', [deploymentId]))!;
        state = (await one(c, ROLLOUT_STATE, [deploymentId, deviceId]))!.state as RolloutState;
        if (state === 'waiting') {
          if (dep.state !== 'active') return null;
          const busy = (await one(c, 'SELECT count(*) AS n FROM firmware_rollout WHERE deployment_id = $1 AND state = ANY($2::text[])', [deploymentId, IN_PROGRESS_STATES]))!.n as number;
          if (busy >= (dep.max_concurrent as number)) return null;
          await run(c, `UPDATE firmware_rollout SET state = 'started', started_at = $1, updated_at = $1 WHERE deployment_id = $2 AND device_id = $3`, [now, deploymentId, deviceId]);
          state = 'started';
        }
      }
      if (!IN_PROGRESS_STATES.includes(state)) return null; // finished (committed, reverted or failed): nothing more to do here
      return { deploymentId, release: toRelease((await one(c, 'SELECT * FROM firmware_releases WHERE id = $1', [newest.release_id]))!) };
    });
  }

  async deviceMayFetch(deviceId: string, releaseId: string): Promise<boolean> {
    const told = await one(
      this.pool,
      `SELECT 1 FROM firmware_rollout r JOIN firmware_deployments d ON d.id = r.deployment_id
       WHERE r.device_id = $1 AND d.release_id = $2 AND r.state <> 'waiting' LIMIT 1`,
      [deviceId, releaseId],
    );
    return told !== undefined;
  }

  async recordStatus(i: StatusInput): Promise<StatusResult> {
    return inTransaction(this.pool, async (c): Promise<StatusResult> => {
      // Locked first: two devices failing at once must see each other's failure when they
      // count (or a threshold of 2 would never be reached), and a report must not slip between
      // a slot's count and its taking.
      const depRow = await one(c, 'SELECT * FROM firmware_deployments WHERE id = $1 FOR UPDATE', [i.deploymentId]);
      const rollout = depRow && (await one(c, ROLLOUT_STATE, [i.deploymentId, i.deviceId]));
      if (!depRow || !rollout) return { ok: false, reason: 'not_targeted' };
      if (depRow.release_id !== i.releaseId) return { ok: false, reason: 'wrong_release' };
      const recorded = !FINAL_STATES.includes(rollout.state as RolloutState);
      if (recorded) {
        await run(
          c,
          `UPDATE firmware_rollout SET state = $1, reason = $2, updated_at = $3, reported_at = $4, started_at = coalesce(started_at, $3)
           WHERE deployment_id = $5 AND device_id = $6`,
          [i.state, i.reason, i.now, i.reportedAt, i.deploymentId, i.deviceId],
        );
      }
      let deployment = toDeployment(depRow);
      let halted = false;
      if (recorded && deployment.state === 'active' && FAILED_STATES.includes(i.state)) {
        const failures = (await one(c, 'SELECT count(*) AS n FROM firmware_rollout WHERE deployment_id = $1 AND state = ANY($2::text[])', [i.deploymentId, FAILED_STATES]))!.n as number;
        if (failures >= deployment.failureThreshold) {
          const reason = thresholdHaltReason(failures, deployment.failureThreshold, i.deviceId, i.state, i.reason);
          deployment = toDeployment((await one(c, HALT, [reason, i.now, i.deploymentId]))!);
          halted = true;
        }
      }
      return { ok: true, recorded, deployment, halted };
    });
  }
}

/**
 * Reads that must agree with each other (a deployment's state, devices and counts): one
 * read-only transaction on one snapshot, as SQLite's read transaction gives.
 */
async function snapshot<T>(pool: pg.Pool, fn: (c: PgClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (c) => {
    await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    return fn(c);
  });
}

/** Deployment rows with their releases, devices (in list order) and counts, in three queries. */
async function details(q: Queryable, deployments: Row[]): Promise<DeploymentDetail[]> {
  if (deployments.length === 0) return [];
  const ids = deployments.map((d) => d.id as string);
  const releases = new Map(
    (await all(q, 'SELECT * FROM firmware_releases WHERE id = ANY($1::text[])', [[...new Set(deployments.map((d) => d.release_id as string))]])).map((r) => [r.id as string, toRelease(r)]),
  );
  const devices = new Map<string, RolloutDevice[]>(ids.map((id) => [id, []]));
  for (const r of await all(q, 'SELECT * FROM firmware_rollout WHERE deployment_id = ANY($1::text[]) ORDER BY deployment_id, seq', [ids])) {
    devices.get(r.deployment_id as string)!.push(toRollout(r));
  }
  return deployments.map((row) => {
    const deployment = toDeployment(row);
    const list = devices.get(deployment.id)!;
    return { ...deployment, release: releases.get(deployment.releaseId)!, devices: list, counts: countStates(list) };
  });
}

function newestRolloutPerDevice(where: string): string {
  return `SELECT DISTINCT ON (r.device_id COLLATE "C") r.*, d.release_id, rel.version
     FROM firmware_rollout r JOIN firmware_deployments d ON d.id = r.deployment_id JOIN firmware_releases rel ON rel.id = d.release_id
     ${where}
     ORDER BY r.device_id COLLATE "C", ${NEWEST_DEPLOYMENT_FIRST}`;
}
