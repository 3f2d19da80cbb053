import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { cidrHostCount } from './discovery/ws-discovery.js';
import { readCardSettings } from './provision/card-settings.js';

// One typed config for the agent: a JSON file (VIGIL_CONFIG or --config) plus environment
// overrides for every path and endpoint. Validated at start-up; a bad value is an error that
// names the option.

const ms = (def: number) => z.number().int().positive().default(def);
const count = (def: number) => z.number().int().positive().default(def);

/** Max restarts per period before a supervisor gives up (OTP's intensity/period). */
const BudgetSchema = (maxRestarts: number, periodMs: number) =>
  z.object({ maxRestarts: count(maxRestarts), periodMs: ms(periodMs) }).strict().prefault({});

const SupervisionSchema = z
  .object({
    agent: BudgetSchema(10, 60_000),
    camera: BudgetSchema(25, 60_000),
    variants: BudgetSchema(50, 60_000),
  })
  .strict()
  .prefault({});

/** The HealthMonitor's checks and the escalation ladder (docs/agent.md, "Health and escalation"). */
const HealthSchema = z
  .object({
    intervalMs: ms(60_000),
    /** Event-loop lag above this in two checks in a row: restart the agent. */
    maxLoopLagMs: ms(5_000),
    /** Resident memory above this: restart the agent. */
    maxRssBytes: z.number().int().positive().default(512 * 1024 ** 2),
    /** Share of one core (0-1) the agent may burn over a check period while nothing progresses. */
    maxIdleCpu: z.number().positive().max(4).default(0.8),
    /** Free space on the data disk below this is reported. */
    minFreeDiskBytes: z.number().int().nonnegative().default(256 * 1024 ** 2),
    /** A queued capture older than this is reported. */
    maxQueueAgeMs: ms(3_600_000),
    /** A camera with no good capture for this many of its intervals is failing. */
    cameraFailingIntervals: count(3),
    /** Escalation: restarts of one failed part, then of the agent, before the next step. */
    partRestarts: count(3),
    agentRestarts: count(3),
    /** Reboots (with nothing better to try) before a technician is asked for. */
    rebootsBeforeHuman: count(2),
    /** Escalation counters reset after the agent has been healthy this long. */
    healthyResetMs: ms(30 * 60_000),
    /** Reboot loops are damped: the n-th reboot waits for min(first × 2^(n-1), max) of uptime. */
    rebootDampFirstMs: ms(10 * 60_000),
    rebootDampMaxMs: ms(4 * 3_600_000),
  })
  .strict()
  .prefault({});

/** Over-the-air updates (docs/agent.md, "Updates"): RAUC bundles into the inactive A/B slot. */
/** The SD card's settings (vigil.txt, docs/firmware.md "Card settings"), as the firmware copies them at boot. */
const CardSchema = z
  .object({
    /** The copy `vigil-card read` makes; a missing file means no card settings. Empty: none. */
    file: z.string().default('/run/vigil/card.txt'),
    /** Removes the used claim code from the card (and the copy). Empty: nothing is erased. */
    eraseCommand: z.array(z.string()).default(['/usr/sbin/vigil-card', 'erase-claim']),
  })
  .strict()
  .prefault({});

const UpdateSchema = z
  .object({
    /** Off, or on where the system can install bundles (the RAUC binary and the keyring exist). */
    enabled: z.boolean().default(true),
    /** How often the cloud is asked for this device's target firmware (with jitter). */
    pollMs: ms(15 * 60_000),
    /** The largest bundle downloaded; /data keeps 256 MiB free besides. */
    maxBundleBytes: z.number().int().positive().default(1024 ** 3),
    /** A trial boot that has not captured and uploaded this long after boot goes back. */
    trialTimeoutMs: ms(10 * 60_000),
    rauc: z.string().min(1).default('/usr/bin/rauc'),
    /** The CA bundles must be signed under (installed with the image). */
    keyring: z.string().min(1).default('/etc/rauc/keyring.pem'),
    /** Reboots the device; with the argument `tryboot` into the one-shot trial (docs/firmware.md). */
    rebootCommand: z.array(z.string().min(1)).min(1).default(['/usr/sbin/vigil-reboot']),
  })
  .strict()
  .prefault({});

const WatchdogSchema = z
  .object({
    /** The watchdog to feed: /dev/watchdog, or the firmware keeper's heartbeat file. Empty: none. */
    path: z.string().default(''),
    intervalMs: ms(5_000),
    /** No feeding while the event loop runs this late. */
    maxLagMs: ms(10_000),
  })
  .strict()
  .prefault({});

/** ONVIF discovery (docs/agent.md, "Cameras: discovery"). */
const DiscoverySchema = z
  .object({
    enabled: z.boolean().default(true),
    /** A discovery round at start-up and then every intervalMs. */
    intervalMs: ms(300_000),
    /** How long a round collects answers to its multicast probe. */
    probeWaitMs: ms(3_000),
    /** The camera LAN's local IPv4 address: probes are bound to it and sent out of its interface. Default: the system's choice. */
    interfaceAddress: z.ipv4('must be an IPv4 address of this device').optional(),
    /** Each ONVIF call, connect to last byte. */
    callTimeoutMs: ms(5_000),
    /** A camera missing from this many rounds in a row is lost. */
    lostAfterRounds: count(3),
    /** Cameras asked at once. */
    queryConcurrency: z.number().int().positive().max(32).default(4),
    /** Try WS-Security PasswordText when a camera refuses the digest (the password then crosses the LAN in clear). */
    passwordText: z.boolean().default(true),
    /** A unicast probe to each host of a subnet, for cameras that ignore multicast. Off unless given. */
    sweep: z
      .object({
        cidr: z.string().refine((c) => {
          try {
            cidrHostCount(c);
            return true;
          } catch {
            return false;
          }
        }, 'must be an IPv4 subnet like 192.168.1.0/24 (prefix /8 to /32)'),
        maxHosts: z.number().int().positive().max(4096).default(256),
        concurrency: z.number().int().positive().max(256).default(16),
        hostWaitMs: ms(1_000),
        timeoutMs: ms(30_000),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (!d.sweep) return;
    let hosts = 0;
    try {
      hosts = cidrHostCount(d.sweep.cidr);
    } catch {
      return; // reported by the cidr refinement
    }
    if (hosts > d.sweep.maxHosts) {
      ctx.addIssue({ code: 'custom', path: ['sweep', 'cidr'], message: `${d.sweep.cidr} has ${hosts} hosts, more than sweep.maxHosts (${d.sweep.maxHosts})` });
    }
  })
  .prefault({});

/** The status page for technicians on the site's LAN (docs/agent.md, "The status page"). */
const LocalSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** The device's: http://vigil-XXXX.local/ on port 80. 0: any free port (tests). */
    port: z.number().int().min(0).max(65_535).default(80),
    /** Every interface, as on the device (technicians reach it over the LAN); tests and `make run` use loopback. */
    host: z.string().refine((h) => isIP(h) !== 0, 'must be an IP address of this device (0.0.0.0: every interface)').default('0.0.0.0'),
    /** Where the setup PIN is kept; default <dataDir>/setup-pin. */
    pinFile: z.string().min(1).optional(),
  })
  .strict()
  .prefault({});

const CredentialsSchema = z.object({ username: z.string().min(1), password: z.string() }).strict();

/**
 * A seed for the encrypted camera credentials store, imported at start when it changed. The
 * file keeps it in clear: `vigil-agent camera-credentials` is the way that leaves no copy.
 */
const CameraCredentialsSchema = z
  .object({
    default: CredentialsSchema.optional(),
    /** By camera key or MAC. */
    cameras: z.record(z.string(), CredentialsSchema).optional(),
  })
  .strict();

const CameraSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'use 1-64 letters, digits, "-" or "_" (it names spool folders)'),
  name: z.string().min(1).optional(),
  url: z
    .string()
    .refine((u) => URL.canParse(u) && /^rtsps?:$/.test(new URL(u).protocol), 'must be an rtsp:// or rtsps:// URL')
    .optional(),
  /** The camera's snapshot URI (HTTP, Digest or Basic auth): a fallback, or the only path. */
  snapshotUrl: z
    .string()
    .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http:// or https:// URL')
    .optional(),
  /** auto: RTSP, the snapshot URI after repeated RTSP failures, RTSP again once it works. */
  capturePath: z.enum(['auto', 'rtsp', 'snapshot']).default('auto'),
  transport: z.enum(['tcp', 'udp']).default('tcp'),
  username: z.string().optional(),
  password: z.string().optional(),
  intervalMs: z.number().int().positive().optional(),
  captureTimeoutMs: z.number().int().positive().optional(),
});

const ConfigSchema = z
  .object({
    cloudUrl: z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL'),
    dataDir: z.string().min(1).default('/data/vigil'),
    claimCode: z.string().min(1).optional(),
    deviceName: z.string().min(1).optional(),
    ffmpegPath: z.string().min(1).default('ffmpeg'),
    captureIntervalMs: ms(30_000),
    captureTimeoutMs: ms(120_000),
    /** RTSP socket timeout handed to ffmpeg (-timeout). */
    rtspTimeoutMs: ms(10_000),
    spoolBudgetBytes: z.number().int().positive().default(4 * 1024 ** 3),
    requestTimeoutMs: ms(30_000),
    activePollMs: ms(5_000),
    idlePollMs: ms(30_000),
    maxAttempts: z.number().int().positive().default(20),
    maxAgeMs: ms(86_400_000),
    shutdownTimeoutMs: ms(10_000),
    /** node-cron expression for the token check; hourly. */
    tokenCheckSchedule: z.string().default('17 * * * *'),
    /** Files tried in order for the board serial (device identity and token key). */
    serialSources: z.array(z.string()).min(1).optional(),
    /** Drills only: run the agent's clock this many times faster than real time. */
    clockScale: z.number().min(1).default(1),
    cameras: z.array(CameraSchema).default([]),
    discovery: DiscoverySchema,
    cameraCredentials: CameraCredentialsSchema.optional(),
    supervision: SupervisionSchema,
    health: HealthSchema,
    watchdog: WatchdogSchema,
    heartbeatIntervalMs: ms(60_000),
    update: UpdateSchema,
    card: CardSchema,
    /** The LED that shows the agent's state (health/status-light.ts): its /sys/class/leds
     * directory; unset: the Pi's activity LED when there is one; empty: none. */
    statusLight: z.object({ led: z.string().optional() }).strict().prefault({}),
    local: LocalSchema,
    /** Where the device says what it is, which slot it booted and how it last went down. */
    system: z
      .object({
        releaseFile: z.string().default('/etc/vigil/release'),
        cmdlineFile: z.string().default('/proc/cmdline'),
        trybootFile: z.string().default('/proc/device-tree/chosen/bootloader/tryboot'),
        bootIdFile: z.string().default('/proc/sys/kernel/random/boot_id'),
        uptimeFile: z.string().default('/proc/uptime'),
        watchdogBootstatusFile: z.string().default('/sys/class/watchdog/watchdog0/bootstatus'),
        /** Prints the NTP state ("Leap status : Normal" once synced); empty: unknown. */
        clockStatusCommand: z.array(z.string()).default(['chronyc', '-n', 'tracking']),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.cameras.forEach((cam, i) => {
      if (seen.has(cam.id)) ctx.addIssue({ code: 'custom', path: ['cameras', i, 'id'], message: `duplicate camera id "${cam.id}"` });
      seen.add(cam.id);
      if (!cam.url && !cam.snapshotUrl) ctx.addIssue({ code: 'custom', path: ['cameras', i, 'url'], message: 'a camera needs url (RTSP) or snapshotUrl' });
      if (cam.capturePath === 'rtsp' && !cam.url) ctx.addIssue({ code: 'custom', path: ['cameras', i, 'url'], message: 'capturePath "rtsp" needs url' });
      if (cam.capturePath === 'snapshot' && !cam.snapshotUrl) {
        ctx.addIssue({ code: 'custom', path: ['cameras', i, 'snapshotUrl'], message: 'capturePath "snapshot" needs snapshotUrl' });
      }
    });
  });

export type AgentConfig = z.infer<typeof ConfigSchema>;
export type CameraConfig = AgentConfig['cameras'][number];
export type DiscoveryConfig = AgentConfig['discovery'];

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  override readonly name = 'ConfigError';
}

/** Environment overrides; a dotted key sets one field of a section ("watchdog.path"). */
const ENV: Record<string, { key: keyof AgentConfig | `${keyof AgentConfig}.${string}`; type: 'string' | 'number' | 'json' }> = {
  VIGIL_CLOUD_URL: { key: 'cloudUrl', type: 'string' },
  VIGIL_DATA_DIR: { key: 'dataDir', type: 'string' },
  VIGIL_CLAIM_CODE: { key: 'claimCode', type: 'string' },
  VIGIL_DEVICE_NAME: { key: 'deviceName', type: 'string' },
  VIGIL_FFMPEG: { key: 'ffmpegPath', type: 'string' },
  VIGIL_CAPTURE_INTERVAL_MS: { key: 'captureIntervalMs', type: 'number' },
  VIGIL_CAPTURE_TIMEOUT_MS: { key: 'captureTimeoutMs', type: 'number' },
  VIGIL_SPOOL_BUDGET_BYTES: { key: 'spoolBudgetBytes', type: 'number' },
  VIGIL_CLOCK_SCALE: { key: 'clockScale', type: 'number' },
  VIGIL_SERIAL_SOURCES: { key: 'serialSources', type: 'json' },
  VIGIL_CAMERAS: { key: 'cameras', type: 'json' },
  VIGIL_SUPERVISION: { key: 'supervision', type: 'json' },
  VIGIL_HEALTH: { key: 'health', type: 'json' },
  VIGIL_WATCHDOG: { key: 'watchdog', type: 'json' },
  VIGIL_WATCHDOG_PATH: { key: 'watchdog.path', type: 'string' },
  VIGIL_HEARTBEAT_INTERVAL_MS: { key: 'heartbeatIntervalMs', type: 'number' },
  VIGIL_DISCOVERY: { key: 'discovery', type: 'json' },
  VIGIL_DISCOVERY_ENABLED: { key: 'discovery.enabled', type: 'json' },
  VIGIL_DISCOVERY_INTERFACE: { key: 'discovery.interfaceAddress', type: 'string' },
  VIGIL_SYSTEM: { key: 'system', type: 'json' },
  VIGIL_UPDATE: { key: 'update', type: 'json' },
  VIGIL_CARD: { key: 'card', type: 'json' },
  VIGIL_LOCAL: { key: 'local', type: 'json' },
  VIGIL_LOCAL_PORT: { key: 'local.port', type: 'number' },
};

export function loadConfig(opts: { file?: string | undefined; env?: NodeJS.ProcessEnv } = {}): AgentConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.VIGIL_CONFIG;
  let raw: Record<string, unknown> = {};
  if (file) {
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`config file ${file}: must hold a JSON object`);
  }
  applyCard(raw, env);
  for (const [name, { key, type }] of Object.entries(ENV)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    let value: unknown;
    if (type === 'string') value = v;
    else if (type === 'number') value = Number(v);
    else {
      try {
        value = JSON.parse(v);
      } catch {
        throw new ConfigError(`${name}: not valid JSON`);
      }
    }
    const [section, field] = key.split('.') as [string, string | undefined];
    if (field === undefined) raw[section] = value;
    else {
      const current = raw[section];
      raw[section] = { ...(typeof current === 'object' && current !== null ? current : {}), [field]: value };
    }
  }
  return parseConfig(raw);
}

/**
 * The card's CLOUD_URL wins over the config file (the image's file names no real cloud); an
 * environment variable wins over both. A bad value on the card is a warning the agent logs
 * (agent.ts), never a config error: a typo on a card must not keep the device from starting.
 */
function applyCard(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  // An invalid card section is reported by parseConfig; until then the default file is read.
  const file = CardSchema.safeParse(env.VIGIL_CARD ? safeJson(env.VIGIL_CARD) : raw.card).data?.file ?? CardSchema.parse({}).file;
  const url = readCardSettings(file)?.values.CLOUD_URL;
  if (url !== undefined) raw.cloudUrl = url;
}

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

export function parseConfig(raw: unknown): AgentConfig {
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(config)'}: ${i.message}`);
    throw new ConfigError(`invalid agent config:\n  ${lines.join('\n  ')}`);
  }
  return r.data;
}

export const paths = (c: AgentConfig) => ({
  db: join(c.dataDir, 'agent.db'),
  spool: join(c.dataDir, 'spool'),
  secret: join(c.dataDir, 'device.secret'),
  /** Left by the firmware's watchdog keeper (VIGIL_RESET_NOTE) when it lets the board reset. */
  resetNote: join(c.dataDir, 'watchdog-reset'),
  /** Firmware bundles while they download. */
  updates: join(c.dataDir, 'update'),
  /** The status page's setup PIN (0600). */
  setupPin: c.local.pinFile ?? join(c.dataDir, 'setup-pin'),
});
