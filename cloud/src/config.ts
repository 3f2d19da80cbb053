import { DHASH_BITS } from '@vigil/protocol';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { RISK_LEVELS } from './analysis/analyser.js';
import { AnalysisSettingsSchema, DEFAULT_ANALYSIS_SETTINGS, type AnalysisSettings } from './analysis/settings.js';
import { ConfigError } from './errors.js';

// One typed config for the cloud: defaults, then environment variables, then command-line
// flags. Validated once at start-up; a bad value is a ConfigError naming the option (the env
// variable or flag it came from). Secrets come from the environment only, never from flags,
// which other users of the machine can read in `ps`.

export const MIB = 1024 * 1024;
/** Heartbeats kept per device; the backlog rule can look back at most this far. */
export const HEARTBEAT_HISTORY = 20;

const positiveInt = (def: number) => z.number().int().positive().default(def);

export const CloudConfigSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 = any free port (tests). */
    port: z.number().int().min(0).max(65_535).default(8080),
    /** SQLite database, object folder and generated secrets live here. */
    dataDir: z.string().min(1).default('.run/cloud'),
    /** The base URL people and devices use to reach this cloud (logs, dashboard links). */
    publicUrl: z
      .string()
      .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL')
      .optional(),
    /** Else generated on first start and kept in <dataDir>/admin-token (0600). */
    adminToken: z.string().min(16, 'must be at least 16 characters').optional(),
    maxObjectBytes: positiveInt(20 * MIB),
    presignTtlS: positiveInt(900),
    /** Requests per device per rate-limit window. */
    deviceRateLimit: positiveInt(1200),
    rateLimitWindowMs: positiveInt(60_000),
    /** Else generated once and kept in <dataDir>/url-signing-key (0600). */
    urlSigningKey: z.string().min(32, 'must be at least 32 characters').optional(),
    claimCodeTtlS: positiveInt(86_400),
    /** How long a dashboard login lasts. */
    sessionTtlS: positiveInt(7 * 86_400),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

    // Where records and frames live (see docs/scaling.md). Unset: SQLite and a folder in dataDir.
    /** postgres://user:password@host:port/database for PostgreSQL. Env only: it may carry a password. */
    databaseUrl: z
      .string()
      .refine((u) => URL.canParse(u) && /^postgres(ql)?:$/.test(new URL(u).protocol), 'must be a postgres:// URL')
      .optional(),
    /** Connections each process keeps to PostgreSQL at most. */
    databasePoolSize: z.number().int().min(2).max(200).default(10),
    /** An S3-compatible bucket for frames and firmware instead of the object folder. */
    s3Bucket: z.string().min(3).max(63).optional(),
    /** The S3 endpoint (MinIO, Ceph, Garage, ...); unset = AWS, by region. */
    s3Endpoint: z
      .string()
      .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL')
      .optional(),
    s3Region: z.string().min(1).default('us-east-1'),
    /** Bucket in the path (most S3-compatible servers) or in the host name (AWS); by default path when an endpoint is set. */
    s3UrlStyle: z.enum(['path', 'virtual-host']).optional(),
    /** Env only. Unset: the AWS SDK's own chain (environment, profile, instance role). */
    s3AccessKeyId: z.string().min(1).optional(),
    s3SecretAccessKey: z.string().min(1).optional(),

    // Fleet watch (see fleet/fleet-watch.ts).
    /** How often the watch looks for silent devices and cameras. */
    fleetSweepIntervalS: positiveInt(30),
    /** A device with no heartbeat for longer than this gets a device_silent alert. */
    deviceSilentS: positiveInt(300),
    /** A camera of a heartbeating device with no frame for longer than this is offline. */
    cameraSilentS: positiveInt(300),
    /** This many look-alike compressed frames in a row make a camera_frozen alert. */
    frozenFrames: z.number().int().min(2).default(10),
    /** "Look-alike": dHashes at most this many bits apart (of 4096; H.264 noise flips a few). */
    frozenMaxDistance: z.number().int().min(0).max(DHASH_BITS).default(16),
    /** The queue must have grown over this many consecutive heartbeats ... */
    backlogHeartbeats: z.number().int().min(2).max(HEARTBEAT_HISTORY).default(5),
    /** ... and its oldest capture be at least this old, for a backlog_growing alert. */
    backlogMinAgeS: z.number().int().min(0).default(300),

    // Notifications (see notify/).
    /** Webhooks that receive alert notifications. Env only: such URLs often carry a secret. */
    webhookUrls: z
      .array(z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'each must be an http(s) URL'))
      .default([]),
    /** Key of the X-Vigil-Signature HMAC; required when webhookUrls is set. */
    webhookSecret: z.string().min(16, 'must be at least 16 characters').optional(),
    webhookTimeoutS: positiveInt(10),
    /** After this many attempts a notification is recorded as failed. */
    webhookMaxAttempts: positiveInt(10),

    // Triage: an OpenAI-compatible model that writes a short diagnosis on fleet alerts.
    /** e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1 (Ollama); unset = no triage. */
    triageBaseUrl: z
      .string()
      .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL')
      .optional(),
    triageModel: z.string().min(1).optional(),
    /** Sent as a bearer token when set (local servers often need none). Env only. */
    triageApiKey: z.string().min(1).optional(),
    triageTimeoutS: positiveInt(30),

    // Analysis (see analysis/pipeline.ts). Sites and cameras override the defaults below
    // (PUT /admin/v1/sites/:id/analysis, /admin/v1/cameras/:id/analysis).
    /** The local COCO object detector: the embedded default and the vision model's cost gate. */
    detector: z.enum(['local', 'off']).default('local'),
    /** An OpenAI-compatible vision model (OpenAI, Ollama, vLLM, llama.cpp server); unset = detector and rules only. */
    visionBaseUrl: z
      .string()
      .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL')
      .optional(),
    visionModel: z.string().min(1).optional(),
    /** Env only. */
    visionApiKey: z.string().min(1).optional(),
    /** Calls to the vision model at once. */
    visionConcurrency: z.number().int().min(1).max(64).default(4),
    visionConnectTimeoutS: positiveInt(10),
    visionReadTimeoutS: positiveInt(120),
    /** Frames of a batch sent to the model (evenly chosen, always the newest). */
    visionMaxImages: z.number().int().min(1).max(16).default(4),
    /** How the answer's JSON is asked for; older servers may need json_object or none. */
    visionResponseFormat: z.enum(['json_schema', 'json_object', 'none']).default('json_schema'),
    dedupeThreshold: AnalysisSettingsSchema.shape.dedupeThreshold.default(DEFAULT_ANALYSIS_SETTINGS.dedupeThreshold),
    reanalyseAfterS: AnalysisSettingsSchema.shape.reanalyseAfterS.default(DEFAULT_ANALYSIS_SETTINGS.reanalyseAfterS),
    batchWindowS: AnalysisSettingsSchema.shape.batchWindowS.default(DEFAULT_ANALYSIS_SETTINGS.batchWindowS),
    batchIdleS: AnalysisSettingsSchema.shape.batchIdleS.default(DEFAULT_ANALYSIS_SETTINGS.batchIdleS),
    batchMaxFrames: AnalysisSettingsSchema.shape.batchMaxFrames.default(DEFAULT_ANALYSIS_SETTINGS.batchMaxFrames),
    /** The sites' time zone unless a site says otherwise. */
    timezone: AnalysisSettingsSchema.shape.timezone.default(DEFAULT_ANALYSIS_SETTINGS.timezone),
    alertMinLevel: z.enum(RISK_LEVELS).default(DEFAULT_ANALYSIS_SETTINGS.minLevel),
    alertCooldownS: AnalysisSettingsSchema.shape.cooldownS.default(DEFAULT_ANALYSIS_SETTINGS.cooldownS),
    renotifyS: AnalysisSettingsSchema.shape.renotifyS.default(DEFAULT_ANALYSIS_SETTINGS.renotifyS),
    /** How long an analysis job a replica took stays its own without renewal: after its death, the wait before another takes it. */
    jobLeaseS: z.number().int().min(3).max(3600).default(60),

    // Firmware (see routes/firmware-*.ts).
    /** Largest RAUC bundle an admin may upload. */
    maxBundleBytes: positiveInt(1024 * MIB),
    /**
     * CA certificate (PEM) that bundles must be signed by, checked with `rauc info --keyring` on
     * upload. Unset: bundles are stored unchecked and their releases say `verified: false`;
     * production must set it.
     */
    firmwareKeyring: z
      .string()
      .min(1)
      .refine((p) => existsSync(p), 'no such file')
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.webhookUrls.length > 0 && c.webhookSecret === undefined) {
      ctx.addIssue({ code: 'custom', path: ['webhookSecret'], message: 'required when webhook URLs are set (VIGIL_WEBHOOK_SECRET)' });
    }
    if ((c.visionBaseUrl === undefined) !== (c.visionModel === undefined)) {
      const missing = c.visionBaseUrl === undefined ? 'visionBaseUrl' : 'visionModel';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'the vision model needs both a base URL and a model' });
    }
    if ((c.s3AccessKeyId === undefined) !== (c.s3SecretAccessKey === undefined)) {
      const missing = c.s3AccessKeyId === undefined ? 's3AccessKeyId' : 's3SecretAccessKey';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'S3 credentials need both the key id and the secret' });
    }
    if ((c.s3Endpoint !== undefined || c.s3AccessKeyId !== undefined) && c.s3Bucket === undefined) {
      ctx.addIssue({ code: 'custom', path: ['s3Bucket'], message: 'the S3 options need a bucket (VIGIL_S3_BUCKET)' });
    }
    if ((c.triageBaseUrl === undefined) !== (c.triageModel === undefined)) {
      const missing = c.triageBaseUrl === undefined ? 'triageBaseUrl' : 'triageModel';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'triage needs both a base URL and a model' });
    }
  });

export type CloudConfig = z.infer<typeof CloudConfigSchema>;
export type CloudConfigInput = z.input<typeof CloudConfigSchema>;

type Key = keyof CloudConfig;
interface OptionSource {
  key: Key;
  env: string;
  /** Command-line flag, for options that are not secrets. */
  flag?: string;
  /** list: comma- or space-separated. */
  type: 'string' | 'number' | 'list';
}

export const CONFIG_OPTIONS: readonly OptionSource[] = [
  { key: 'host', env: 'VIGIL_CLOUD_HOST', flag: 'host', type: 'string' },
  { key: 'port', env: 'VIGIL_CLOUD_PORT', flag: 'port', type: 'number' },
  { key: 'dataDir', env: 'VIGIL_CLOUD_DATA_DIR', flag: 'data-dir', type: 'string' },
  { key: 'publicUrl', env: 'VIGIL_CLOUD_PUBLIC_URL', flag: 'public-url', type: 'string' },
  { key: 'adminToken', env: 'VIGIL_ADMIN_TOKEN', type: 'string' },
  { key: 'maxObjectBytes', env: 'VIGIL_MAX_OBJECT_BYTES', flag: 'max-object-bytes', type: 'number' },
  { key: 'presignTtlS', env: 'VIGIL_PRESIGN_TTL_S', flag: 'presign-ttl-s', type: 'number' },
  { key: 'deviceRateLimit', env: 'VIGIL_DEVICE_RATE_LIMIT', flag: 'device-rate-limit', type: 'number' },
  { key: 'rateLimitWindowMs', env: 'VIGIL_RATE_LIMIT_WINDOW_MS', flag: 'rate-limit-window-ms', type: 'number' },
  { key: 'urlSigningKey', env: 'VIGIL_URL_SIGNING_KEY', type: 'string' },
  { key: 'claimCodeTtlS', env: 'VIGIL_CLAIM_CODE_TTL_S', flag: 'claim-code-ttl-s', type: 'number' },
  { key: 'sessionTtlS', env: 'VIGIL_SESSION_TTL_S', flag: 'session-ttl-s', type: 'number' },
  { key: 'logLevel', env: 'VIGIL_LOG_LEVEL', flag: 'log-level', type: 'string' },
  { key: 'databaseUrl', env: 'VIGIL_DATABASE_URL', type: 'string' },
  { key: 'databasePoolSize', env: 'VIGIL_DATABASE_POOL_SIZE', flag: 'database-pool-size', type: 'number' },
  { key: 's3Bucket', env: 'VIGIL_S3_BUCKET', flag: 's3-bucket', type: 'string' },
  { key: 's3Endpoint', env: 'VIGIL_S3_ENDPOINT', flag: 's3-endpoint', type: 'string' },
  { key: 's3Region', env: 'VIGIL_S3_REGION', flag: 's3-region', type: 'string' },
  { key: 's3UrlStyle', env: 'VIGIL_S3_URL_STYLE', flag: 's3-url-style', type: 'string' },
  { key: 's3AccessKeyId', env: 'VIGIL_S3_ACCESS_KEY_ID', type: 'string' },
  { key: 's3SecretAccessKey', env: 'VIGIL_S3_SECRET_ACCESS_KEY', type: 'string' },
  { key: 'fleetSweepIntervalS', env: 'VIGIL_FLEET_SWEEP_INTERVAL_S', flag: 'fleet-sweep-interval-s', type: 'number' },
  { key: 'deviceSilentS', env: 'VIGIL_DEVICE_SILENT_S', flag: 'device-silent-s', type: 'number' },
  { key: 'cameraSilentS', env: 'VIGIL_CAMERA_SILENT_S', flag: 'camera-silent-s', type: 'number' },
  { key: 'frozenFrames', env: 'VIGIL_FROZEN_FRAMES', flag: 'frozen-frames', type: 'number' },
  { key: 'frozenMaxDistance', env: 'VIGIL_FROZEN_MAX_DISTANCE', flag: 'frozen-max-distance', type: 'number' },
  { key: 'backlogHeartbeats', env: 'VIGIL_BACKLOG_HEARTBEATS', flag: 'backlog-heartbeats', type: 'number' },
  { key: 'backlogMinAgeS', env: 'VIGIL_BACKLOG_MIN_AGE_S', flag: 'backlog-min-age-s', type: 'number' },
  { key: 'webhookUrls', env: 'VIGIL_WEBHOOK_URLS', type: 'list' },
  { key: 'webhookSecret', env: 'VIGIL_WEBHOOK_SECRET', type: 'string' },
  { key: 'webhookTimeoutS', env: 'VIGIL_WEBHOOK_TIMEOUT_S', flag: 'webhook-timeout-s', type: 'number' },
  { key: 'webhookMaxAttempts', env: 'VIGIL_WEBHOOK_MAX_ATTEMPTS', flag: 'webhook-max-attempts', type: 'number' },
  { key: 'triageBaseUrl', env: 'VIGIL_TRIAGE_BASE_URL', flag: 'triage-base-url', type: 'string' },
  { key: 'triageModel', env: 'VIGIL_TRIAGE_MODEL', flag: 'triage-model', type: 'string' },
  { key: 'triageApiKey', env: 'VIGIL_TRIAGE_API_KEY', type: 'string' },
  { key: 'triageTimeoutS', env: 'VIGIL_TRIAGE_TIMEOUT_S', flag: 'triage-timeout-s', type: 'number' },
  { key: 'detector', env: 'VIGIL_DETECTOR', flag: 'detector', type: 'string' },
  { key: 'visionBaseUrl', env: 'VIGIL_VISION_BASE_URL', flag: 'vision-base-url', type: 'string' },
  { key: 'visionModel', env: 'VIGIL_VISION_MODEL', flag: 'vision-model', type: 'string' },
  { key: 'visionApiKey', env: 'VIGIL_VISION_API_KEY', type: 'string' },
  { key: 'visionConcurrency', env: 'VIGIL_VISION_CONCURRENCY', flag: 'vision-concurrency', type: 'number' },
  { key: 'visionConnectTimeoutS', env: 'VIGIL_VISION_CONNECT_TIMEOUT_S', flag: 'vision-connect-timeout-s', type: 'number' },
  { key: 'visionReadTimeoutS', env: 'VIGIL_VISION_READ_TIMEOUT_S', flag: 'vision-read-timeout-s', type: 'number' },
  { key: 'visionMaxImages', env: 'VIGIL_VISION_MAX_IMAGES', flag: 'vision-max-images', type: 'number' },
  { key: 'visionResponseFormat', env: 'VIGIL_VISION_RESPONSE_FORMAT', flag: 'vision-response-format', type: 'string' },
  { key: 'dedupeThreshold', env: 'VIGIL_DEDUPE_THRESHOLD', flag: 'dedupe-threshold', type: 'number' },
  { key: 'reanalyseAfterS', env: 'VIGIL_REANALYSE_AFTER_S', flag: 'reanalyse-after-s', type: 'number' },
  { key: 'batchWindowS', env: 'VIGIL_BATCH_WINDOW_S', flag: 'batch-window-s', type: 'number' },
  { key: 'batchIdleS', env: 'VIGIL_BATCH_IDLE_S', flag: 'batch-idle-s', type: 'number' },
  { key: 'batchMaxFrames', env: 'VIGIL_BATCH_MAX_FRAMES', flag: 'batch-max-frames', type: 'number' },
  { key: 'timezone', env: 'VIGIL_TIMEZONE', flag: 'timezone', type: 'string' },
  { key: 'alertMinLevel', env: 'VIGIL_ALERT_MIN_LEVEL', flag: 'alert-min-level', type: 'string' },
  { key: 'jobLeaseS', env: 'VIGIL_JOB_LEASE_S', flag: 'job-lease-s', type: 'number' },
  { key: 'alertCooldownS', env: 'VIGIL_ALERT_COOLDOWN_S', flag: 'alert-cooldown-s', type: 'number' },
  { key: 'renotifyS', env: 'VIGIL_RENOTIFY_S', flag: 'renotify-s', type: 'number' },
  { key: 'maxBundleBytes', env: 'VIGIL_MAX_BUNDLE_BYTES', flag: 'max-bundle-bytes', type: 'number' },
  { key: 'firmwareKeyring', env: 'VIGIL_FIRMWARE_KEYRING', flag: 'firmware-keyring', type: 'string' },
];

/** The flags `loadConfig` understands, in node:util parseArgs form. */
export const CONFIG_FLAGS: Record<string, { type: 'string' }> = Object.fromEntries(
  CONFIG_OPTIONS.filter((o) => o.flag).map((o) => [o.flag!, { type: 'string' as const }]),
);

export function loadConfig(
  opts: { env?: NodeJS.ProcessEnv; flags?: Record<string, string | boolean | undefined>; overrides?: CloudConfigInput } = {},
): CloudConfig {
  const env = opts.env ?? process.env;
  const raw: Record<string, unknown> = {};
  const origin: Partial<Record<Key, string>> = {};
  for (const o of CONFIG_OPTIONS) {
    const fromEnv = env[o.env];
    if (fromEnv !== undefined && fromEnv !== '') {
      raw[o.key] = convert(fromEnv, o.type, o.env);
      origin[o.key] = o.env;
    }
    const fromFlag = o.flag ? opts.flags?.[o.flag] : undefined;
    if (typeof fromFlag === 'string') {
      raw[o.key] = convert(fromFlag, o.type, `--${o.flag}`);
      origin[o.key] = `--${o.flag}`;
    }
  }
  return parseConfig({ ...raw, ...opts.overrides }, origin);
}

export function parseConfig(raw: unknown, origin: Partial<Record<Key, string>> = {}): CloudConfig {
  const r = CloudConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const key = String(i.path[0] ?? '');
    const name = origin[key as Key] ?? (key || 'config');
    return `${name}: ${i.message}`;
  });
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}

function convert(v: string, type: OptionSource['type'], name: string): unknown {
  if (type === 'string') return v;
  if (type === 'list') return v.split(/[\s,]+/).filter((x) => x !== '');
  const n = Number(v);
  if (v.trim() === '' || Number.isNaN(n)) throw new ConfigError(`invalid configuration: ${name}: ${JSON.stringify(v)} is not a number`);
  return n;
}

/** The cloud-wide analysis settings: the settings defaults with the configured values. */
export function analysisDefaults(c: CloudConfig): AnalysisSettings {
  return {
    ...DEFAULT_ANALYSIS_SETTINGS,
    dedupeThreshold: c.dedupeThreshold,
    reanalyseAfterS: c.reanalyseAfterS,
    batchWindowS: c.batchWindowS,
    batchIdleS: c.batchIdleS,
    batchMaxFrames: c.batchMaxFrames,
    timezone: c.timezone,
    minLevel: c.alertMinLevel,
    cooldownS: c.alertCooldownS,
    renotifyS: c.renotifyS,
  };
}
