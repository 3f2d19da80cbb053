import { join } from 'node:path';
import { VARIANTS } from '@vigil/protocol';
import { paths, type AgentConfig } from './config.js';
import { Bus } from './lib/bus.js';
import type { Clock } from './lib/clock.js';
import type { Logger } from './lib/logger.js';
import { keepRunning, type Service } from './lib/service.js';
import { openDb, type Db } from './store/db.js';
import { Counters } from './store/counters.js';
import { Kv } from './store/kv.js';
import { UploadQueue } from './store/upload-queue.js';
import { Outbox } from './outbox/outbox.js';
import { CloudClient } from './cloud/cloud-client.js';
import { TokenVault } from './auth/token-vault.js';
import { DeviceAuth } from './auth/device-auth.js';
import { deriveTokenKey, hardwareId, loadOrCreateSecret, readHardwareSerial, SERIAL_SOURCES } from './auth/device-identity.js';
import { Uploader } from './upload/uploader.js';
import { CameraWorker } from './capture/camera-worker.js';

export interface AgentParts {
  db: Db;
  queue: UploadQueue;
  counters: Counters;
  vault: TokenVault;
  hardwareId: string;
}

/** Opens the database and the device identity; shared by the agent and its CLI commands. */
export async function openParts(config: AgentConfig): Promise<AgentParts> {
  const p = paths(config);
  const db = openDb(p.db);
  const serial = await readHardwareSerial(config.serialSources ?? SERIAL_SOURCES);
  const secret = await loadOrCreateSecret(p.secret);
  const kv = new Kv(db);
  return {
    db,
    queue: new UploadQueue(db),
    counters: new Counters(db),
    vault: new TokenVault(kv, deriveTokenKey(serial, secret)),
    hardwareId: hardwareId(serial),
  };
}

/**
 * The running agent: wiring only. Capture and upload never meet except through the outbox
 * (spool + queue); every long-running part is a service kept running until the stop signal.
 */
export class Agent {
  readonly bus = new Bus();
  readonly client: CloudClient;
  readonly auth: DeviceAuth;
  readonly outbox: Outbox;
  readonly workers: CameraWorker[];
  readonly uploaders: Uploader[] = [];

  constructor(
    readonly config: AgentConfig,
    readonly parts: AgentParts,
    readonly clock: Clock,
    readonly log: Logger,
  ) {
    const { queue, counters, vault } = parts;
    this.client = new CloudClient({
      baseUrl: config.cloudUrl,
      token: () => this.auth.token(),
      timeoutMs: config.requestTimeoutMs,
      now: () => clock.now(),
    });
    this.auth = new DeviceAuth({
      vault,
      client: this.client,
      bus: this.bus,
      clock,
      log: log.child({ part: 'auth' }),
      hardwareId: parts.hardwareId,
      deviceName: config.deviceName ?? `vigil-${parts.hardwareId.slice(0, 8)}`,
      claimCode: config.claimCode,
      checkSchedule: config.tokenCheckSchedule,
    });
    this.outbox = new Outbox({
      spoolDir: paths(config).spool,
      budgetBytes: config.spoolBudgetBytes,
      queue,
      counters,
      bus: this.bus,
      clock,
      log: log.child({ part: 'outbox' }),
      ffmpegPath: config.ffmpegPath,
    });
    this.workers = config.cameras.map(
      (cam) =>
        new CameraWorker({
          camera: {
            id: cam.id,
            name: cam.name ?? cam.id,
            url: cam.url,
            transport: cam.transport,
            username: cam.username,
            password: cam.password,
            intervalMs: cam.intervalMs ?? config.captureIntervalMs,
            captureTimeoutMs: cam.captureTimeoutMs ?? config.captureTimeoutMs,
          },
          clock,
          log: log.child({ camera: cam.id }),
          workDir: join(this.outbox.workDir, cam.id),
          sink: this.outbox.accept,
          ffmpegPath: config.ffmpegPath,
          rtspTimeoutMs: config.rtspTimeoutMs,
        }),
    );
  }

  /** One uploader per (camera, variant); cameras removed from the config still drain their backlog. */
  private buildUploaders(): void {
    const { config, parts, clock, log } = this;
    const policy = {
      activePollMs: config.activePollMs,
      idlePollMs: config.idlePollMs,
      maxAttempts: config.maxAttempts,
      maxAgeMs: config.maxAgeMs,
    };
    const cameras = new Set([...config.cameras.map((c) => c.id), ...parts.queue.depth().map((d) => d.camera)]);
    for (const camera of cameras) {
      for (const variant of VARIANTS) {
        this.uploaders.push(
          new Uploader({
            camera,
            variant,
            queue: parts.queue,
            counters: parts.counters,
            client: this.client,
            bus: this.bus,
            clock,
            log: log.child({ camera, variant }),
            policy,
          }),
        );
      }
    }
  }

  /** Runs until `signal` aborts, then resolves once every part has stopped. */
  async run(signal: AbortSignal): Promise<void> {
    const r = await this.outbox.reconcile();
    this.buildUploaders();
    this.log.info({ ...r, cameras: this.workers.length }, 'agent started');
    const services: [string, Service][] = [
      ['auth', this.auth],
      ...this.uploaders.map((u) => [`uploader:${u.camera}/${u.variant}`, u] as [string, Service]),
      ...this.workers.map((w, i) => [`camera:${this.config.cameras[i]!.id}`, w] as [string, Service]),
    ];
    await Promise.all(services.map(([name, s]) => keepRunning(name, s, signal, this.clock, this.log)));
    await this.client.close();
    this.log.info('agent stopped');
  }

  close(): void {
    this.parts.db.close();
  }
}
