import type { AlertService } from './alerts/alert-service.js';
import type { AnalysisPipeline } from './analysis/pipeline.js';
import type { ResilientAnalyser } from './analysis/resilient-analyser.js';
import type { Broadcast } from './lib/broadcast.js';
import type { CloudConfig } from './config.js';
import type { BundleIntake } from './firmware/bundle-intake.js';
import type { BundleVerifier } from './firmware/bundle-verifier.js';
import type { FleetWatch } from './fleet/fleet-watch.js';
import type { FolderStore } from './objects/folder-store.js';
import type { ObjectStore } from './objects/types.js';
import type { CloudStore } from './store/types.js';

/** What the routes are built from; assembled once in main.ts and passed in. */
export interface AppContext {
  config: CloudConfig;
  store: CloudStore;
  objects: ObjectStore;
  /** Set when objects live in the embedded folder store, whose PUTs this app serves. */
  folder: FolderStore | undefined;
  adminToken: string;
  /** Unix epoch milliseconds; tests pass a fake. */
  now: () => number;
  /** Keeps fleet alerts in step with heartbeats and frames. */
  fleet: FleetWatch;
  alerts: AlertService;
  /** Woken when a frame is recorded, so analysis starts at once. */
  analysis: Pick<AnalysisPipeline, 'wake' | 'status'>;
  /** The vision model behind its protection (its breaker's state), when configured. */
  analyser: Pick<ResilientAnalyser, 'status' | 'name'> | undefined;
  /** Notified after every event and alert change: the live stream's connections wait on it. */
  changes: Broadcast;
  /** Where uploaded bundles land first, and what checks their signature (unset: no keyring). */
  firmware: { intake: BundleIntake; verifier: BundleVerifier | undefined };
}
