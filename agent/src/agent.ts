import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { LocalAccessView } from '@vigil/protocol';
import { paths, type AgentConfig } from './config.js';
import { Bus } from './lib/bus.js';
import type { Clock } from './lib/clock.js';
import type { Logger } from './lib/logger.js';
import type { LogRing } from './lib/log-ring.js';
import type { Service } from './lib/service.js';
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
import { AgentTree } from './agent-tree.js';
import { AgentCameras } from './cameras/agent-cameras.js';
import { CameraCredentialStore, loadCredentialsKey } from './cameras/credentials.js';
import { SupervisorGaveUpError } from './supervise/supervisor.js';
import { HealthMonitor } from './health/health-monitor.js';
import { LIVENESS_GRACE_MS } from './health/checks.js';
import { Escalation } from './health/escalation.js';
import { Heartbeat } from './health/heartbeat.js';
import { LoopMonitor } from './health/loop-monitor.js';
import { WatchdogFeeder } from './health/watchdog.js';
import { RunState, type RunStart } from './health/run-state.js';
import { readClockState, readDiskSpace, readFirmwareInfo, type FirmwareInfo } from './health/system-facts.js';
import { RaucInstaller } from './update/installer.js';
import { rebootWith } from './update/reboot.js';
import { Updater } from './update/updater.js';
import { AGENT_VERSION } from './version.js';
import { SetupPin } from './local/setup-pin.js';
import { MdnsService, mdnsHostname } from './local/mdns.js';
import { findLed, lightState, runStatusLight } from './health/status-light.js';
import { LocalStatusServer } from './local/status-server.js';
import { StatusReader } from './local/status-view.js';
import { Thumbnails } from './local/thumbnails.js';
import { readCardSettings, type CardSettings } from './provision/card-settings.js';
import { runCommand } from './lib/run-command.js';

/** The card's erase (a FAT partition mounted, rewritten, synced, unmounted) gets this long. */
export const CARD_ERASE_TIMEOUT_MS = 60_000;

/** Exit code of escalation step 2 (sysexits' EX_TEMPFAIL): init starts the agent again. */
export const EXIT_RESTART = 75;

export interface AgentParts {
  db: Db;
  kv: Kv;
  credentials: CameraCredentialStore;
  queue: UploadQueue;
  counters: Counters;
  vault: TokenVault;
  hardwareId: string;
  /** vigil-XXXX: the device's mDNS name (and the firmware's system host name). */
  hostName: string;
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
    kv,
    credentials: new CameraCredentialStore(kv, await loadCredentialsKey(config)),
    queue: new UploadQueue(db),
    counters: new Counters(db),
    vault: new TokenVault(kv, deriveTokenKey(serial, secret)),
    hardwareId: hardwareId(serial),
    hostName: mdnsHostname(serial),
  };
}

export interface AgentExtras {
  /** Recent log lines for the heartbeat (the logger writes into it). */
  ring?: LogRing;
  /** Tests wrap an uploader to inject a fault (agent-tree.ts). */
  uploaderService?: (u: Uploader) => Service;
  /** Ends the process when a restart's graceful stop misses its deadline (default process.exit). */
  exit?: (code: number) => void;
}

export interface AgentExit {
  /** 0 after a requested stop; EXIT_RESTART when the agent asks init to start it again. */
  code: number;
  reason: string | null;
}

/**
 * The running agent: wiring only. Capture and upload never meet except through the outbox
 * (spool + queue); every long-running part runs in the supervision tree (agent-tree.ts), and
 * the HealthMonitor climbs the escalation ladder when a part or the process is unwell.
 */
export class Agent {
  readonly bus = new Bus();
  readonly client: CloudClient;
  readonly auth: DeviceAuth;
  readonly outbox: Outbox;
  cameras: AgentCameras | undefined;
  readonly runState: RunState;
  readonly escalation: Escalation;
  readonly loop = new LoopMonitor();
  readonly watchdog: WatchdogFeeder | undefined;
  health: HealthMonitor | undefined;
  heartbeat: Heartbeat | undefined;
  tree: AgentTree | undefined;
  /** Over-the-air updates; undefined where they are off or the system cannot install bundles. */
  updater: Updater | undefined;
  /** The status page's PIN; also for the heartbeat (the dashboard shows it). */
  readonly setupPin: SetupPin;
  /** The latest frame of each camera, for the status page. */
  readonly thumbnails: Thumbnails;
  /** The status page for technicians on the LAN; undefined where it is off. */
  local: LocalStatusServer | undefined;
  #firmware: FirmwareInfo = { version: null, slot: null, trial: false, builtAt: null };
  #start: RunStart | undefined;
  /** Why the agent asked for the reboot it is stopping for (an update), if it did. */
  #plannedReboot: string | null = null;
  /** Set when the agent decided to exit (escalation step 2). */
  #restart: string | null = null;
  readonly #stop = new AbortController();
  #restartDeadline: NodeJS.Timeout | undefined;

  constructor(
    readonly config: AgentConfig,
    readonly parts: AgentParts,
    readonly clock: Clock,
    readonly log: Logger,
    readonly extras: AgentExtras = {},
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
      cardCode: () => this.card()?.values.CLAIM_CODE,
      ...(config.card.eraseCommand.length > 0 ? { eraseCardCode: () => eraseCardCode(config.card.eraseCommand) } : {}),
      kv: parts.kv,
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
    this.setupPin = new SetupPin({ file: paths(config).setupPin, pinFromCard: () => this.card()?.values.SETUP_PIN, log: log.child({ part: 'local' }) });
    this.thumbnails = new Thumbnails({ ffmpegPath: config.ffmpegPath, log: log.child({ part: 'local' }) });
    const sys = config.system;
    this.runState = new RunState({
      kv: parts.kv,
      clock,
      bootIdPath: sys.bootIdFile,
      uptimePath: sys.uptimeFile,
      watchdogBootstatusPath: sys.watchdogBootstatusFile,
      resetNotePath: paths(config).resetNote,
    });
    if (config.watchdog.path !== '') {
      this.watchdog = new WatchdogFeeder({
        path: config.watchdog.path,
        intervalMs: config.watchdog.intervalMs,
        maxLagMs: config.watchdog.maxLagMs,
        clock,
        log: log.child({ part: 'watchdog' }),
        loop: this.loop,
        healthy: () => this.health?.okToFeed() ?? true,
      });
    }
    this.escalation = new Escalation({
      kv: parts.kv,
      clock,
      log: log.child({ part: 'escalation' }),
      policy: config.health,
      // A configured path that does not exist leaves the feeder idle ('closed'): nothing to reset the board.
      canReboot: () => this.watchdog !== undefined && this.watchdog.status().state !== 'closed',
      // Not taken by the agent: a trial boot goes back to the old slot by any reboot (step 3),
      // and a committed release is rolled back by a person, with a deployment of the old one.
      canRollBack: () => false,
      uptimeMs: () => this.runState.uptimeS() * 1000,
    });
  }

  private buildTree(): AgentTree {
    const { config, clock, log } = this;
    const { queue, counters } = this.parts;
    const policy = {
      activePollMs: config.activePollMs,
      idlePollMs: config.idlePollMs,
      maxAttempts: config.maxAttempts,
      maxAgeMs: config.maxAgeMs,
    };
    const tree = new AgentTree(
      { config, clock, log },
      {
        auth: this.auth,
        uploader: (camera, variant) =>
          new Uploader({ camera, variant, queue, counters, client: this.client, bus: this.bus, clock, log: log.child({ camera, variant }), policy }),
        ...(this.extras.uploaderService ? { uploaderService: this.extras.uploaderService } : {}),
      },
    );
    this.cameras = new AgentCameras({
      config,
      db: this.parts.db,
      credentials: this.parts.credentials,
      client: this.client,
      tree,
      clock,
      log,
      workDir: this.outbox.workDir,
      sink: config.local.enabled ? this.thumbnails.tap(this.outbox.accept) : this.outbox.accept,
      health: () => this.health?.latest()?.cameras ?? [],
    });
    this.health = new HealthMonitor({
      clock,
      log: log.child({ part: 'health' }),
      intervalMs: config.health.intervalMs,
      // Requests time out in real time, and timers run late in real time: on a drill's faster
      // clock (clockScale) those allowances are that many times longer in clock time.
      limits: {
        ...config.health,
        maxUploadStepMs: 4 * config.requestTimeoutMs * config.clockScale,
        livenessGraceMs: LIVENESS_GRACE_MS * config.clockScale,
      },
      parts: tree,
      queue: () => {
        const now = clock.now();
        return queue.depth().map((d) => ({ camera: d.camera, variant: d.variant, depth: d.count, oldestAgeMs: Math.max(0, now - d.oldestCapturedAt) }));
      },
      loop: this.loop,
      disk: () => readDiskSpace(config.dataDir),
      clockState: () => readClockState(config.system.clockStatusCommand, clock.now(), this.#firmware.builtAt),
      escalation: this.escalation,
      reports: () => {
        const d = this.cameras?.discovery.check();
        return d && !d.ok ? [{ check: 'discovery', part: null, reason: d.reason ?? 'discovery is not working', remedy: 'report' as const }] : [];
      },
      actions: {
        restartPart: (path) => tree.restartPart(path),
        restartAgent: (reason) => this.restartAgent(reason),
        reboot: (reason) => this.reboot(reason),
        rollBack: () => Promise.resolve(),
      },
    });
    this.heartbeat = new Heartbeat({
      client: this.client,
      clock,
      log: log.child({ part: 'heartbeat' }),
      intervalMs: config.heartbeatIntervalMs,
      sources: {
        agentVersion: AGENT_VERSION,
        firmware: () => this.#firmware,
        lastReboot: () => this.#start?.lastReboot ?? { reason: 'unknown', detail: null },
        uptimeS: () => this.runState.uptimeS(),
        report: () => this.health?.latest() ?? null,
        uncaptured: () => this.cameras?.uncaptured() ?? [],
        escalation: this.escalation,
        counters: () => counters.all(),
        deadLetters: () => queue.deadLetterCount(),
        logs: (n) => this.extras.ring?.recent(n) ?? [],
        update: () => this.updater?.heartbeatView() ?? null,
        local: () => this.localAccess(),
      },
    });
    this.updater = this.makeUpdater(tree);
    // A device that just got its token says so at once, instead of at the next round.
    this.bus.on('token:refreshed', () => {
      this.heartbeat?.wake();
      this.cameras?.inventory.changed();
    });
    tree.add('health', this.health);
    tree.add('heartbeat', this.heartbeat);
    tree.add('inventory', this.cameras.inventory);
    tree.add('discovery', this.cameras.discovery);
    if (this.updater) tree.add('update', this.updater);
    this.local = this.makeLocal(tree);
    if (this.local) tree.add('local', this.local);
    // The name is announced only where the page is on the LAN: not on loopback (tests, make run)
    if (this.local && config.local.port > 0 && !isLoopback(config.local.host)) {
      tree.add('mdns', new MdnsService({ hostname: this.parts.hostName, port: config.local.port, log: log.child({ part: 'mdns' }) }));
    }
    return tree;
  }

  /** The status page, where it is on; it reads what the other parts already know. */
  private makeLocal(tree: AgentTree): LocalStatusServer | undefined {
    const { config, clock, log, parts } = this;
    if (!config.local.enabled) return undefined;
    const status = new StatusReader({
      config,
      clock,
      hardwareId: parts.hardwareId,
      hostName: parts.hostName,
      deviceName: config.deviceName ?? `vigil-${parts.hardwareId.slice(0, 8)}`,
      auth: this.auth,
      queue: parts.queue,
      kv: parts.kv,
      cameras: () => tree.cameras(),
      uncaptured: () => this.cameras?.uncaptured() ?? [],
      thumbnailAt: (camera) => this.thumbnails.latestAt(camera),
      uptimeS: () => this.runState.uptimeS(),
    });
    return new LocalStatusServer({
      host: config.local.host,
      port: config.local.port,
      hostName: parts.hostName,
      pin: () => this.setupPin.get(),
      status,
      thumbnails: this.thumbnails,
      auth: this.auth,
      clock,
      log: log.child({ part: 'local' }),
    });
  }

  /** The Updater, where updates are on and RAUC with its keyring is installed. */
  private makeUpdater(tree: AgentTree): Updater | undefined {
    const { config, clock, log } = this;
    const u = config.update;
    if (!u.enabled) return undefined;
    const missing = [u.rauc, u.keyring].filter((f) => !existsSync(f));
    if (missing.length > 0) {
      log.info({ missing }, 'over-the-air updates off: this system cannot install bundles');
      return undefined;
    }
    const reboot = rebootWith(u.rebootCommand);
    const updateLog = log.child({ part: 'update' });
    return new Updater({
      client: this.client,
      installer: new RaucInstaller({ rauc: u.rauc, keyring: u.keyring }),
      kv: this.parts.kv,
      clock,
      log: updateLog,
      dir: paths(config).updates,
      pollMs: u.pollMs,
      maxBundleBytes: u.maxBundleBytes,
      trialTimeoutMs: u.trialTimeoutMs,
      firmware: () => this.#firmware,
      uptimeS: () => this.runState.uptimeS(),
      // Product-level health of this run: a frame captured and an upload acknowledged
      health: () => ({
        captured: tree.cameras().some((c) => c.capturesOk > 0),
        uploaded: tree.uploaders().some((x) => x.uploaded > 0),
      }),
      reboot: async (tryboot, reason) => {
        updateLog.warn({ tryboot, reason }, 'rebooting');
        // A planned reboot: init stops the agent (SIGTERM), and the next boot says why
        this.#plannedReboot = reason;
        await reboot(tryboot);
      },
    });
  }

  /** Escalation step 2: stop everything and exit with EXIT_RESTART; init starts the agent again. */
  restartAgent(reason: string): void {
    if (this.#restart !== null) return;
    this.#restart = reason;
    this.runState.markRestart(reason);
    this.log.error({ reason, exitCode: EXIT_RESTART }, 'restarting the agent');
    // Not a planned stop for the watchdog: the keeper stays armed, so an agent that does not
    // come back still ends in a reset.
    this.watchdog?.keepArmedOnStop();
    // A part that ignores its stop signal must not keep a sick agent alive.
    this.#restartDeadline = setTimeout(() => {
      this.log.error({ deadlineMs: this.config.shutdownTimeoutMs }, 'stop for the restart missed its deadline; exiting');
      (this.extras.exit ?? process.exit)(EXIT_RESTART);
    }, this.config.shutdownTimeoutMs);
    this.#restartDeadline.unref();
    this.#stop.abort();
  }

  /** Escalation step 3: the watchdog is no longer fed and the board resets. */
  private reboot(reason: string): void {
    this.runState.markReboot(reason);
    this.log.error({ reason }, 'rebooting the device: the watchdog is no longer fed');
    this.watchdog?.stopForReboot(reason);
  }

  /** Runs until `signal` aborts (or the agent decides to restart), then stops every part. */
  async run(signal: AbortSignal): Promise<AgentExit> {
    this.#start = this.runState.begin();
    this.#firmware = await readFirmwareInfo(this.config.system);
    // Loaded (or made and stored) at start, page or no page: the heartbeat reads setupPin.current
    await this.setupPin.get().catch((err: unknown) => this.log.error({ err }, 'setup PIN cannot be loaded or stored; the status page tries again'));
    const r = await this.outbox.reconcile();
    const tree = (this.tree = this.buildTree());
    // A camera with a backlog gets its uploads even if nothing captures it any more.
    for (const d of this.parts.queue.depth()) tree.addCamera(d.camera);
    await this.cameras!.resume();
    const card = this.card();
    for (const w of card?.warnings ?? []) this.log.warn({ file: card!.file }, `card settings: ${w}`);
    this.log.info(
      { ...r, cameras: this.cameras!.manager.keys().length, lastReboot: this.#start.lastReboot, lastExit: this.#start.lastExit, firmware: this.#firmware, verdict: this.escalation.verdict() },
      'agent started',
    );
    const stop = AbortSignal.any([signal, this.#stop.signal]);
    this.loop.start();
    // The feeder runs beside the tree, not in it: it starts first and stops last, so the keeper
    // is disarmed only once every other part has stopped. If it crashes, the board is no
    // longer fed and resets: the safe way to fail.
    const feederStop = new AbortController();
    const feeding = this.watchdog?.start(feederStop.signal).catch((err: unknown) => this.log.error({ err }, 'watchdog feeder crashed; the board will reset'));
    // The board's activity LED shows the agent's state (health/status-light.ts)
    const led = findLed(this.config.statusLight.led);
    const light = led === undefined ? undefined : runStatusLight(led, this.log.child({ part: 'light' }), () => lightState({ tokenValid: this.auth.state === 'valid', report: this.health?.latest() ?? null }));
    try {
      await tree.root.start(stop);
    } catch (err) {
      if (!(err instanceof SupervisorGaveUpError)) throw err;
      // The root gave up: parts of the agent crash faster than they can be restarted.
      const reason = `the agent's supervisor gave up: ${err.message}`;
      this.escalation.recordAgentRestart(reason);
      this.restartAgent(reason);
    } finally {
      light?.stop();
      feederStop.abort();
      await feeding;
      clearTimeout(this.#restartDeadline);
      this.loop.stop();
      await this.client.close();
    }
    if (this.#restart !== null) return { code: EXIT_RESTART, reason: this.#restart };
    this.runState.markPlannedStop(this.#plannedReboot);
    this.log.info('agent stopped');
    return { code: 0, reason: null };
  }

  /** Where a technician reaches the status page, with its PIN, for the dashboard; null while it is not listening. */
  private localAccess(): LocalAccessView | null {
    const port = this.local?.address?.port;
    const pin = this.setupPin.current?.pin;
    if (port === undefined || pin === undefined) return null;
    const addresses = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    return { hostName: this.parts.hostName, port, setupPin: pin, addresses: addresses.slice(0, 16) };
  }

  /** The SD card's settings as they are now (the erase changes them), or undefined without a card file. */
  card(): CardSettings | undefined {
    return readCardSettings(this.config.card.file);
  }

  close(): void {
    this.parts.db.close();
  }
}

const isLoopback = (host: string) => host === '::1' || host.startsWith('127.');

async function eraseCardCode([file, ...args]: readonly string[]): Promise<void> {
  await runCommand(file!, args, CARD_ERASE_TIMEOUT_MS);
}

