// The agent's cameras, wired together: the registry (configured and discovered cameras), ONVIF
// discovery feeding it, the manager that runs a capture worker per camera in the supervision
// tree, and the inventory the cloud gets.
import type { CameraHealth, CameraInventoryItem } from '@vigil/protocol';
import type { AgentTree } from '../agent-tree.js';
import type { CloudClient } from '../cloud/cloud-client.js';
import type { AgentConfig } from '../config.js';
import type { Clock } from '../lib/clock.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../lib/logger.js';
import type { CaptureSink } from '../capture/types.js';
import { DiscoveryService } from '../discovery/discovery-service.js';
import { CameraManager, inventoryItem, type CameraSpec } from './camera-manager.js';
import { CameraRegistry, type CameraChangeEvent } from './camera-registry.js';
import { configuredCamera } from './configured.js';
import type { CameraCredentialStore, CredentialSource } from './credentials.js';
import { InventoryReporter } from './inventory.js';
import type { CameraRecord } from './types.js';

export interface AgentCamerasOptions {
  config: AgentConfig;
  db: Db;
  credentials: CameraCredentialStore;
  client: CloudClient;
  tree: AgentTree;
  clock: Clock;
  log: Logger;
  /** Capture work dirs (the spool's filesystem) and where captures go. */
  workDir: string;
  sink: CaptureSink;
  /** The health monitor's view of each camera (for inventory errors and last captures). */
  health: () => CameraHealth[];
}

export class AgentCameras {
  readonly registry: CameraRegistry;
  readonly discovery: DiscoveryService;
  readonly manager: CameraManager;
  readonly inventory: InventoryReporter;

  constructor(private readonly o: AgentCamerasOptions) {
    const { config, clock, log } = o;
    this.registry = new CameraRegistry({ db: o.db, clock, log: log.child({ part: 'registry' }) });
    this.manager = new CameraManager({
      tree: o.tree,
      clock,
      log,
      workDir: o.workDir,
      sink: o.sink,
      ffmpegPath: config.ffmpegPath,
      rtspTimeoutMs: config.rtspTimeoutMs,
    });
    this.discovery = new DiscoveryService({
      registry: this.registry,
      credentials: o.credentials,
      config: config.discovery,
      credentialsSeed: config.cameraCredentials,
      clock,
      log: log.child({ part: 'discovery' }),
      onChange: (e) => this.onChange(e),
    });
    this.inventory = new InventoryReporter({
      client: o.client,
      clock,
      log: log.child({ part: 'inventory' }),
      items: () => this.inventoryItems(),
    });
  }

  /** Before the tree starts: configured cameras, and those found before this start, are captured at once. */
  async resume(): Promise<void> {
    const { config } = this.o;
    this.registry.syncConfig(config.cameras);
    for (const cam of config.cameras) await this.manager.set(cam.id, configuredCamera(config, cam));
    for (const r of this.registry.list()) if (r.source === 'onvif') await this.manager.set(r.key, this.discoveredSpec(r));
  }

  /** Cameras the registry knows that have no capture worker, with why (a wrong password...). */
  uncaptured(): CameraHealth[] {
    const running = new Set(this.manager.keys());
    return this.registry
      .list()
      .filter((r) => !running.has(r.key))
      .map((r) => ({
        camera: r.key,
        name: r.name,
        state: 'stopped' as const,
        lastCaptureAt: null,
        capturesOk: 0,
        failures: 0,
        lastError: r.lastError ? `${r.lastError.code}: ${r.lastError.message}` : r.present ? null : 'not found by the latest discoveries',
      }));
  }

  private onChange(e: CameraChangeEvent): void {
    const set = (key: string, spec: CameraSpec | null): void => {
      this.manager.set(key, spec).catch((err: unknown) => this.o.log.error({ err, camera: key }, "cannot change the camera's capture"));
    };
    if (e.replaces) set(e.replaces, null);
    if (e.camera.source === 'onvif') set(e.camera.key, this.discoveredSpec(e.camera));
    if (e.change === 'address_changed') this.o.log.warn({ camera: e.camera.key, from: e.previousAddress, to: e.camera.address }, 'camera moved to a new address');
    this.inventory.changed();
  }

  private discoveredSpec(r: CameraRecord): CameraSpec | null {
    return discoveredCamera(this.o.config, r, this.o.credentials);
  }

  /** Each camera's inventory line; a capture problem shows while the camera is failing. */
  private inventoryItems(): CameraInventoryItem[] {
    const health = new Map(this.o.health().map((c) => [c.camera, c]));
    return this.registry.list().map((r) => {
      const item = inventoryItem(r, this.manager.path(r.key));
      const h = health.get(r.key);
      if (item.lastError === null && h && h.state !== 'ok') item.lastError = h.lastError;
      if (h?.lastCaptureAt) item.lastSeenAt = h.lastCaptureAt;
      return item;
    });
  }
}

/** How to capture a discovered camera, with its credentials; null when it cannot be captured. */
export function discoveredCamera(config: AgentConfig, r: CameraRecord, credentials: CredentialSource): CameraSpec | null {
  if (!r.present || (!r.streamUri && !r.snapshotUri)) return null;
  const creds = credentials.forCamera({ key: r.key, mac: r.mac })?.credentials;
  return {
    key: r.key,
    name: r.name,
    rtspUrl: r.streamUri,
    snapshotUrl: r.snapshotUri,
    username: creds?.username,
    password: creds?.password,
    transport: 'tcp',
    intervalMs: config.captureIntervalMs,
    captureTimeoutMs: config.captureTimeoutMs,
    capturePath: 'auto',
  };
}
