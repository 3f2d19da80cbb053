import type { UpdateState } from '@vigil/protocol';

// Firmware releases, their deployments and each targeted device's place in a rollout. Times
// are epoch ms.

export interface ReleaseRecord {
  id: string;
  version: string;
  bytes: number;
  sha256: string;
  objectKey: string;
  /** true: the bundle's signature was checked against the configured keyring on upload. */
  verified: boolean;
  createdAt: number;
}

/** waiting: no slot yet; started: its target named the release; then what the device reported. */
export type RolloutState = 'waiting' | 'started' | UpdateState;
/** Every rollout state, in the order an update goes through them. */
export const ROLLOUT_STATES: readonly RolloutState[] = ['waiting', 'started', 'downloading', 'installing', 'trial', 'committed', 'reverted', 'failed'];
/** Told to update and not yet finished: these hold the deployment's slots. */
export const IN_PROGRESS_STATES: readonly RolloutState[] = ['started', 'downloading', 'installing', 'trial'];
export const FINAL_STATES: readonly RolloutState[] = ['committed', 'reverted', 'failed'];
/** These count toward a deployment's failure threshold. */
export const FAILED_STATES: readonly RolloutState[] = ['reverted', 'failed'];

export interface RolloutDevice {
  deviceId: string;
  state: RolloutState;
  reason: string | null;
  startedAt: number | null;
  updatedAt: number;
  /** The device's own clock on its latest report. */
  reportedAt: number | null;
}

export interface DeploymentRecord {
  id: string;
  releaseId: string;
  siteId: string | null;
  maxConcurrent: number;
  failureThreshold: number;
  state: 'active' | 'halted';
  haltReason: string | null;
  haltedAt: number | null;
  createdAt: number;
}

export interface DeploymentDetail extends DeploymentRecord {
  release: ReleaseRecord;
  devices: RolloutDevice[];
  counts: Record<RolloutState, number>;
}

export interface NewDeployment {
  id: string;
  releaseId: string;
  siteId: string | null;
  deviceIds: readonly string[];
  maxConcurrent: number;
  failureThreshold: number;
  now: number;
}

/** A device's place in one deployment, with the release it is about. */
export interface DeviceUpdate extends RolloutDevice {
  deploymentId: string;
  releaseId: string;
  version: string;
}

/** Where a device's updates stand, for lists (the dashboard). */
export interface DeviceUpdates {
  deviceId: string;
  /** Its row in its newest deployment: the one it follows. */
  current: DeviceUpdate;
  /**
   * When `current` has no report from the device yet (waiting, started): its newest reported
   * row in an older deployment, so a revert or failure stays visible after a new deployment.
   */
  previous: DeviceUpdate | null;
}

/** What a device should run now, from its newest deployment. */
export interface DeviceTarget {
  release: ReleaseRecord;
  deploymentId: string;
}

export interface StatusInput {
  deviceId: string;
  deploymentId: string;
  releaseId: string;
  state: UpdateState;
  reason: string | null;
  reportedAt: number;
  now: number;
}

export type StatusResult =
  | { ok: true; recorded: boolean; deployment: DeploymentRecord; halted: boolean }
  | { ok: false; reason: 'not_targeted' | 'wrong_release' };

export interface FirmwareStore {
  /** false when the version exists already. */
  createRelease(r: ReleaseRecord): Promise<boolean>;
  getRelease(id: string): Promise<ReleaseRecord | null>;
  releaseByVersion(version: string): Promise<ReleaseRecord | null>;
  listReleases(): Promise<ReleaseRecord[]>;

  /** Creates the deployment with every device 'waiting'. Unknown device ids are the route's to refuse. */
  createDeployment(d: NewDeployment): Promise<DeploymentRecord>;
  getDeployment(id: string): Promise<DeploymentDetail | null>;
  /** The newest `limit` deployments, newest first, each with its release, devices and counts. */
  listDeployments(limit: number): Promise<DeploymentDetail[]>;
  /** Per device in any deployment: where its updates stand (see DeviceUpdates). */
  deviceUpdates(): Promise<DeviceUpdates[]>;
  /** false if there is no such deployment; halting a halted one keeps the first reason. */
  haltDeployment(id: string, reason: string, now: number): Promise<boolean>;

  /**
   * The device's target, in one transaction: from its newest deployment, the release if the
   * device is in progress there, or if it is waiting and the deployment is active with a free
   * slot (it then takes the slot: 'started'). Otherwise null.
   */
  targetFor(deviceId: string, now: number): Promise<DeviceTarget | null>;
  /** Whether the device was told to install this release (a slot was taken for it). */
  deviceMayFetch(deviceId: string, releaseId: string): Promise<boolean>;
  /**
   * Records a device's report in its deployment. A final state stays final (later reports are
   * not recorded). Reaching the failure threshold halts the deployment, with the reason.
   */
  recordStatus(i: StatusInput): Promise<StatusResult>;
}
