import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { AlertService } from './alerts/alert-service.js';
import type { Analyser } from './analysis/analyser.js';
import { AnalysisPipeline } from './analysis/pipeline.js';
import { ResilientAnalyser } from './analysis/resilient-analyser.js';
import { VisionAnalyser } from './analysis/vision-analyser.js';
import { buildApp } from './app.js';
import { analysisDefaults, parseConfig, type CloudConfig, type CloudConfigInput } from './config.js';
import type { AppContext } from './context.js';
import { LazyDetector } from './detect/lazy-detector.js';
import { WorkerDetector, type ObjectDetector } from './detect/object-detector.js';
import { ConfigError } from './errors.js';
import { BundleIntake } from './firmware/bundle-intake.js';
import { RaucVerifier } from './firmware/bundle-verifier.js';
import { FleetWatch } from './fleet/fleet-watch.js';
import { Triage } from './fleet/triage.js';
import { Broadcast } from './lib/broadcast.js';
import { systemSleep, type Clock, type Sleep } from './lib/clock.js';
import { loadOrCreateSecret } from './lib/secrets.js';
import { ChatClient } from './llm/chat-client.js';
import { NotificationDispatcher } from './notify/dispatcher.js';
import { WebhookSender } from './notify/webhook-sender.js';
import { FolderStore } from './objects/folder-store.js';
import { S3Store } from './objects/s3-store.js';
import type { ObjectStore } from './objects/types.js';
import { UrlSigner } from './objects/url-signer.js';
import { DB_FILE, openStore } from './store/open-store.js';
import type { AlertRecord } from './store/alert-types.js';
import type { CloudStore } from './store/types.js';

/** How long close() lets requests in flight finish before it cuts their connections. */
export const CLOSE_GRACE_MS = 5_000;
/** While closing, connections that have become idle are closed this often. */
const IDLE_SWEEP_MS = 50;

export { DB_FILE };
export const OBJECTS_DIR = 'objects';
export const ADMIN_TOKEN_FILE = 'admin-token';
export const SIGNING_KEY_FILE = 'url-signing-key';
/** Uploaded firmware bundles are streamed here and checked before the object store keeps them. */
export const FIRMWARE_INCOMING_DIR = 'firmware-incoming';

export interface CloudDeps {
  /** Defaults to pino on stdout at config.logLevel. */
  logger?: Logger;
  /** Unix epoch milliseconds; defaults to Date.now. */
  now?: () => number;
  /** How the background loops wait; tests pass one that a fake clock drives. */
  sleep?: Sleep;
  /** Jitter source for retry backoff, [0, 1); defaults to Math.random. */
  random?: () => number;
  /** The analyser behind the resilience layer, instead of the configured vision model (tests, benchmarks). */
  analyser?: Analyser;
  /** The object detector instead of the local one; null for none (tests that do not need it). */
  detector?: ObjectDetector | null;
}

export interface RunningCloud {
  /** http://host:port as bound (port 0 resolved). */
  url: string;
  port: number;
  app: FastifyInstance;
  adminToken: string;
  config: CloudConfig;
  store: CloudStore;
  /** The embedded object folder, when objects are kept there (not in S3). */
  folder: FolderStore | undefined;
  /** The fleet watch: `sweep()` runs one pass now (tests). */
  fleet: FleetWatch;
  alerts: AlertService;
  /** Webhook delivery: `deliverDue()` delivers what is due now (tests). */
  notifications: NotificationDispatcher;
  /** Set when a triage model is configured; `idle()` waits for diagnoses in flight. */
  triage: Triage | undefined;
  /** The analysis pipeline: `runOnce()` does what is due now (tests). */
  analysis: AnalysisPipeline;
  /** The vision model behind its protection, when one is configured. */
  analyser: ResilientAnalyser | undefined;
  /** Stops listening (the port is free when this resolves), stops the loops, closes the database. */
  close(): Promise<void>;
}

/** Opens the configured store and object store (creating the data dir's secrets on first start). */
export async function openCloudParts(
  config: CloudConfig,
  logger: Logger,
): Promise<{ store: CloudStore; objects: ObjectStore; folder: FolderStore | undefined; adminToken: string }> {
  try {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError(`dataDir ${config.dataDir} (VIGIL_CLOUD_DATA_DIR) cannot be created: ${(err as Error).message}`);
  }
  let adminToken = config.adminToken;
  if (!adminToken) {
    const s = loadOrCreateSecret(config.dataDir, ADMIN_TOKEN_FILE);
    adminToken = s.value;
    // Logged once, when generated: the operator needs it to log in and issue claim codes.
    if (s.created) logger.warn({ adminToken, path: s.path }, 'generated an admin token (kept in the data dir; set VIGIL_ADMIN_TOKEN to choose one)');
  }
  const store = await openStore(config);
  try {
    if (config.s3Bucket) {
      const objects = await S3Store.open({
        bucket: config.s3Bucket,
        endpoint: config.s3Endpoint,
        region: config.s3Region,
        urlStyle: config.s3UrlStyle ?? (config.s3Endpoint !== undefined ? 'path' : 'virtual-host'),
        credentials:
          config.s3AccessKeyId !== undefined && config.s3SecretAccessKey !== undefined
            ? { accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey }
            : undefined,
        maxObjectBytes: config.maxObjectBytes,
        presignTtlMs: config.presignTtlS * 1000,
      }).catch((err: unknown) => {
        throw new ConfigError(`${(err as Error).message} (VIGIL_S3_BUCKET, VIGIL_S3_ENDPOINT, VIGIL_S3_ACCESS_KEY_ID)`);
      });
      return { store, objects, folder: undefined, adminToken };
    }
    const signingKey = config.urlSigningKey ?? loadOrCreateSecret(config.dataDir, SIGNING_KEY_FILE).value;
    const folder = await FolderStore.open({
      root: join(config.dataDir, OBJECTS_DIR),
      signer: new UrlSigner(signingKey),
      maxObjectBytes: config.maxObjectBytes,
      presignTtlMs: config.presignTtlS * 1000,
    });
    return { store, objects: folder, folder, adminToken };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * Starts the cloud: on the embedded default (SQLite and an object folder in the data dir) unless
 * the config names a PostgreSQL database or an S3 bucket.
 */
export async function startCloud(input: CloudConfigInput, deps: CloudDeps = {}): Promise<RunningCloud> {
  const config = parseConfig(input);
  const logger = deps.logger ?? pino({ level: config.logLevel });
  const { store, objects, folder, adminToken } = await openCloudParts(config, logger);
  const clock: Clock = { now: deps.now ?? Date.now, sleep: deps.sleep ?? systemSleep };
  // Names this process to the replicas sharing its database (leases on run-once work).
  const instance = `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
  const services = buildServices(config, store, objects, instance, clock, deps, logger);
  const { fleet, alerts, notifications, triage, analysis, analyser, changes } = services;
  const firmware = {
    intake: await BundleIntake.open(join(config.dataDir, FIRMWARE_INCOMING_DIR), config.maxBundleBytes),
    verifier: config.firmwareKeyring ? new RaucVerifier({ keyring: config.firmwareKeyring }) : undefined,
  };
  if (!firmware.verifier) logger.warn('no firmwareKeyring (VIGIL_FIRMWARE_KEYRING): firmware bundles are stored without a signature check; production must set it');
  const ctx: AppContext = { config, store, objects, folder, adminToken, now: clock.now, fleet, alerts, analysis, analyser, changes, firmware };
  let app: FastifyInstance;
  try {
    app = await buildApp(ctx, logger);
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await services.stop();
    await objects.close?.();
    await store.close();
    throw err;
  }
  const { port } = app.server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  logger.info({ url, publicUrl: config.publicUrl, dataDir: config.dataDir }, 'vigil cloud listening');

  const loops = new AbortController();
  const loopsDone = Promise.all([fleet.run(loops.signal), notifications.run(loops.signal), analysis.run(loops.signal)]);
  // Events and alert changes other replicas commit wake this one's live-stream readers too.
  const unwatch = store.watchStream?.(() => changes.notify());

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const deadline = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
      // app.close() closes the keep-alive connections idle at that moment; one whose response
      // was still being written (the client already has every byte) would otherwise hold
      // close() until its keep-alive timeout. Close those too, as they fall idle.
      const idleSweep = setInterval(() => app.server.closeIdleConnections(), IDLE_SWEEP_MS);
      try {
        await app.close();
      } finally {
        clearTimeout(deadline);
        clearInterval(idleSweep);
        // Requests are done; now the loops (a webhook in flight is aborted and, its lease
        // running out, sent again after the next start), then the database.
        loops.abort();
        unwatch?.();
        await loopsDone;
        await services.stop();
        await objects.close?.();
        await store.close();
      }
    })());
  return { url, port, app, adminToken, config, store, folder, fleet, alerts, notifications, triage, analysis, analyser, close };
}

/** The background parts: alerts and their webhooks, triage, the fleet watch, analysis. */
function buildServices(config: CloudConfig, store: CloudStore, objects: ObjectStore, instance: string, clock: Clock, deps: CloudDeps, logger: Logger) {
  const random = deps.random ?? Math.random;
  const timeoutMs = config.webhookTimeoutS * 1000;
  // Without webhooks nothing is ever enqueued; the sender then never sends, and needs no key.
  const sender = new WebhookSender({ secret: config.webhookSecret ?? '', timeoutMs, now: clock.now });
  const notifications = new NotificationDispatcher({
    store: store.alerts,
    sender,
    targets: config.webhookUrls,
    maxAttempts: config.webhookMaxAttempts,
    // Longer than one delivery can take, so a row is never sent twice at once.
    leaseMs: 2 * timeoutMs + 5_000,
    clock,
    random,
    logger: logger.child({ part: 'notifications' }),
  });
  // Every alert change and every event lands in the live stream's log; this wakes its readers.
  const changes = new Broadcast();
  const alerts = new AlertService({
    store: store.alerts,
    targets: config.webhookUrls,
    now: clock.now,
    onEnqueued: () => notifications.wake(),
    onChanged: () => changes.notify(),
    logger: logger.child({ part: 'alerts' }),
  });
  const triage =
    config.triageBaseUrl && config.triageModel
      ? new Triage({
          client: new ChatClient({ baseUrl: config.triageBaseUrl, model: config.triageModel, apiKey: config.triageApiKey, timeoutMs: config.triageTimeoutS * 1000 }),
          fleet: store.fleet,
          alerts,
          logger: logger.child({ part: 'triage' }),
        })
      : undefined;
  const fleet = new FleetWatch({
    store,
    alerts,
    thresholds: {
      deviceSilentMs: config.deviceSilentS * 1000,
      cameraSilentMs: config.cameraSilentS * 1000,
      frozenFrames: config.frozenFrames,
      frozenMaxDistance: config.frozenMaxDistance,
      backlogHeartbeats: config.backlogHeartbeats,
      backlogMinAgeMs: config.backlogMinAgeS * 1000,
    },
    sweepIntervalMs: config.fleetSweepIntervalS * 1000,
    instance,
    clock,
    logger: logger.child({ part: 'fleet' }),
    ...(triage ? { onOpened: (a: AlertRecord) => triage.request(a) } : {}),
  });
  const { analysis, analyser, detector, chat } = buildAnalysis(config, store, objects, alerts, instance, clock, deps, logger);
  const stop = async () => {
    await triage?.stop();
    await sender.close();
    await detector?.close();
    await chat?.close();
  };
  return { fleet, alerts, notifications, triage, analysis, analyser, changes, stop };
}

/** The analysis pipeline with its detector (started on first use) and vision model (when configured). */
function buildAnalysis(config: CloudConfig, store: CloudStore, objects: ObjectStore, alerts: AlertService, instance: string, clock: Clock, deps: CloudDeps, logger: Logger) {
  const log = logger.child({ part: 'analysis' });
  const detector =
    deps.detector === null
      ? undefined
      : (deps.detector ?? (config.detector === 'local' ? new LazyDetector(() => WorkerDetector.start({ logger: log.child({ part: 'detector' }) })) : undefined));
  const chat =
    !deps.analyser && config.visionBaseUrl && config.visionModel
      ? new ChatClient({
          baseUrl: config.visionBaseUrl,
          model: config.visionModel,
          apiKey: config.visionApiKey,
          timeoutMs: config.visionReadTimeoutS * 1000,
          connectTimeoutMs: config.visionConnectTimeoutS * 1000,
        })
      : undefined;
  const inner = deps.analyser ?? (chat ? new VisionAnalyser({ client: chat, maxImages: config.visionMaxImages, responseFormat: config.visionResponseFormat }) : undefined);
  const analyser = inner
    ? new ResilientAnalyser({ analyser: inner, clock, random: deps.random, logger: log.child({ part: 'analyser' }), concurrency: config.visionConcurrency })
    : undefined;
  if (!analyser) log.info({ detector: detector ? 'local' : 'off' }, 'no vision model configured: events come from the object detector and the rules');
  const analysis = new AnalysisPipeline({
    store,
    objects,
    alerts,
    detector,
    analyser,
    defaults: analysisDefaults(config),
    concurrency: config.visionConcurrency,
    instance,
    jobLeaseMs: config.jobLeaseS * 1000,
    clock,
    random: deps.random ?? Math.random,
    logger: log,
  });
  return { analysis, analyser, detector, chat };
}
