import type Database from 'better-sqlite3';
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
  type RolloutState,
  type StatusInput,
  type StatusResult,
} from './firmware-types.js';
import { countStates, thresholdHaltReason, toDeployment, toDeviceUpdate, toRelease, toRollout } from './firmware-rows.js';
import type { Row } from './sqlite-rows.js';

const list = (states: readonly RolloutState[]) => states.map((s) => `'${s}'`).join(', ');
const IN_PROGRESS = list(IN_PROGRESS_STATES);
const FAILED = list(FAILED_STATES);

/** Releases, deployments and rollouts in the embedded SQLite file (opened and migrated by SqliteStore). */
export class SqliteFirmwareStore implements FirmwareStore {
  readonly #db: Database.Database;
  readonly #s;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#s = prepare(db);
  }

  async createRelease(r: ReleaseRecord): Promise<boolean> {
    const res = this.#s.insertRelease.run({ ...r, verified: r.verified ? 1 : 0 });
    return res.changes === 1;
  }

  async getRelease(id: string): Promise<ReleaseRecord | null> {
    const r = this.#s.releaseById.get(id) as Row | undefined;
    return r ? toRelease(r) : null;
  }

  async releaseByVersion(version: string): Promise<ReleaseRecord | null> {
    const r = this.#s.releaseByVersion.get(version) as Row | undefined;
    return r ? toRelease(r) : null;
  }

  async listReleases(): Promise<ReleaseRecord[]> {
    return (this.#s.listReleases.all() as Row[]).map(toRelease);
  }

  async createDeployment(d: NewDeployment): Promise<DeploymentRecord> {
    const s = this.#s;
    return this.#db
      .transaction(() => {
        s.insertDeployment.run(d.id, d.releaseId, d.siteId, d.maxConcurrent, d.failureThreshold, d.now);
        d.deviceIds.forEach((deviceId, seq) => s.insertRollout.run(d.id, deviceId, seq, d.now));
        return toDeployment(s.deploymentById.get(d.id) as Row);
      })
      .immediate();
  }

  async getDeployment(id: string): Promise<DeploymentDetail | null> {
    const r = this.#s.deploymentById.get(id) as Row | undefined;
    return r ? this.#detail(r) : null;
  }

  async listDeployments(limit: number): Promise<DeploymentDetail[]> {
    return this.#db.transaction(() => (this.#s.listDeployments.all(limit) as Row[]).map((r) => this.#detail(r)))();
  }

  async deviceUpdates(): Promise<DeviceUpdates[]> {
    return this.#db.transaction(() => {
      const reported = new Map((this.#s.newestReportedRollouts.all() as Row[]).map((r) => [r.device_id as string, toDeviceUpdate(r)]));
      return (this.#s.newestRollouts.all() as Row[]).map((r): DeviceUpdates => {
        const current = toDeviceUpdate(r);
        const last = reported.get(current.deviceId);
        const previous = current.reportedAt === null && last && last.deploymentId !== current.deploymentId ? last : null;
        return { deviceId: current.deviceId, current, previous };
      });
    })();
  }

  #detail(r: Row): DeploymentDetail {
    const deployment = toDeployment(r);
    const devices = (this.#s.rolloutOf.all(deployment.id) as Row[]).map(toRollout);
    return { ...deployment, release: toRelease(this.#s.releaseById.get(deployment.releaseId) as Row), devices, counts: countStates(devices) };
  }

  async haltDeployment(id: string, reason: string, now: number): Promise<boolean> {
    return this.#db
      .transaction(() => {
        if (!this.#s.deploymentById.get(id)) return false;
        this.#s.halt.run(reason, now, id);
        return true;
      })
      .immediate();
  }

  async targetFor(deviceId: string, now: number): Promise<DeviceTarget | null> {
    const s = this.#s;
    return this.#db
      .transaction((): DeviceTarget | null => {
        const r = s.newestRolloutOf.get(deviceId) as Row | undefined;
        if (!r) return null;
        const state = r.state as RolloutState;
        const deploymentId = r.deployment_id as string;
        if (state === 'waiting') {
          if (r.dep_state !== 'active') return null;
          const busy = (s.inProgressCount.get(deploymentId) as Row).n as number;
          if (busy >= (r.max_concurrent as number)) return null;
          s.start.run(now, now, deploymentId, deviceId);
        } else if (!IN_PROGRESS_STATES.includes(state)) {
          return null; // finished (committed, reverted or failed): nothing more to do here
        }
        return { deploymentId, release: toRelease(s.releaseById.get(r.release_id) as Row) };
      })
      .immediate();
  }

  async deviceMayFetch(deviceId: string, releaseId: string): Promise<boolean> {
    return this.#s.toldRelease.get(deviceId, releaseId) !== undefined;
  }

  async recordStatus(i: StatusInput): Promise<StatusResult> {
    const s = this.#s;
    return this.#db
      .transaction((): StatusResult => {
        const r = s.rolloutRow.get(i.deploymentId, i.deviceId) as Row | undefined;
        if (!r) return { ok: false, reason: 'not_targeted' };
        if (r.release_id !== i.releaseId) return { ok: false, reason: 'wrong_release' };
        const recorded = !FINAL_STATES.includes(r.state as RolloutState);
        if (recorded) s.report.run(i.state, i.reason, i.now, i.reportedAt, i.now, i.deploymentId, i.deviceId);
        let dep = toDeployment(s.deploymentById.get(i.deploymentId) as Row);
        let halted = false;
        if (recorded && dep.state === 'active' && FAILED_STATES.includes(i.state)) {
          const failures = (s.failureCount.get(i.deploymentId) as Row).n as number;
          if (failures >= dep.failureThreshold) {
            s.halt.run(thresholdHaltReason(failures, dep.failureThreshold, i.deviceId, i.state, i.reason), i.now, i.deploymentId);
            dep = toDeployment(s.deploymentById.get(i.deploymentId) as Row);
            halted = true;
          }
        }
        return { ok: true, recorded, deployment: dep, halted };
      })
      .immediate();
  }
}

function prepare(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    insertRelease: p(
      `INSERT INTO firmware_releases (id, version, bytes, sha256, object_key, verified, created_at)
       VALUES (:id, :version, :bytes, :sha256, :objectKey, :verified, :createdAt) ON CONFLICT (version) DO NOTHING`,
    ),
    releaseById: p('SELECT * FROM firmware_releases WHERE id = ?'),
    releaseByVersion: p('SELECT * FROM firmware_releases WHERE version = ?'),
    listReleases: p('SELECT * FROM firmware_releases ORDER BY created_at DESC, rowid DESC'),
    insertDeployment: p(
      `INSERT INTO firmware_deployments (id, release_id, site_id, max_concurrent, failure_threshold, state, created_at)
       VALUES (?, ?, ?, ?, ?, 'active', ?)`,
    ),
    insertRollout: p(`INSERT INTO firmware_rollout (deployment_id, device_id, seq, state, updated_at) VALUES (?, ?, ?, 'waiting', ?)`),
    deploymentById: p('SELECT * FROM firmware_deployments WHERE id = ?'),
    rolloutOf: p('SELECT * FROM firmware_rollout WHERE deployment_id = ? ORDER BY seq'),
    listDeployments: p('SELECT * FROM firmware_deployments ORDER BY created_at DESC, rowid DESC LIMIT ?'),
    // Per device, its row in its newest deployment (the one it follows, as in newestRolloutOf)…
    newestRollouts: p(newestRolloutPerDevice('')),
    // …and its newest row the device itself reported on.
    newestReportedRollouts: p(newestRolloutPerDevice('WHERE r.reported_at IS NOT NULL')),
    // The first reason is kept: it says why the rollout stopped.
    halt: p(`UPDATE firmware_deployments SET state = 'halted', halt_reason = coalesce(halt_reason, ?), halted_at = coalesce(halted_at, ?) WHERE id = ?`),
    newestRolloutOf: p(
      `SELECT r.deployment_id, r.state, d.state AS dep_state, d.max_concurrent, d.release_id
       FROM firmware_rollout r JOIN firmware_deployments d ON d.id = r.deployment_id
       WHERE r.device_id = ? ORDER BY d.created_at DESC, d.rowid DESC LIMIT 1`,
    ),
    inProgressCount: p(`SELECT count(*) AS n FROM firmware_rollout WHERE deployment_id = ? AND state IN (${IN_PROGRESS})`),
    failureCount: p(`SELECT count(*) AS n FROM firmware_rollout WHERE deployment_id = ? AND state IN (${FAILED})`),
    start: p(`UPDATE firmware_rollout SET state = 'started', started_at = ?, updated_at = ? WHERE deployment_id = ? AND device_id = ? AND state = 'waiting'`),
    toldRelease: p(
      `SELECT 1 FROM firmware_rollout r JOIN firmware_deployments d ON d.id = r.deployment_id
       WHERE r.device_id = ? AND d.release_id = ? AND r.state <> 'waiting' LIMIT 1`,
    ),
    rolloutRow: p(
      `SELECT r.state, d.release_id FROM firmware_rollout r JOIN firmware_deployments d ON d.id = r.deployment_id
       WHERE r.deployment_id = ? AND r.device_id = ?`,
    ),
    report: p(
      `UPDATE firmware_rollout SET state = ?, reason = ?, updated_at = ?, reported_at = ?, started_at = coalesce(started_at, ?)
       WHERE deployment_id = ? AND device_id = ?`,
    ),
  };
}

function newestRolloutPerDevice(where: string): string {
  return `SELECT * FROM (
     SELECT r.*, d.release_id, rel.version,
       row_number() OVER (PARTITION BY r.device_id ORDER BY d.created_at DESC, d.rowid DESC) AS n
     FROM firmware_rollout r JOIN firmware_deployments d ON d.id = r.deployment_id JOIN firmware_releases rel ON rel.id = d.release_id
     ${where}
   ) WHERE n = 1 ORDER BY device_id`;
}
