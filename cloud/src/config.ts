import { z } from 'zod';
import { ConfigError } from './errors.js';

// One typed config for the cloud: defaults, then environment variables, then command-line
// flags. Validated once at start-up; a bad value is a ConfigError naming the option (the env
// variable or flag it came from). Secrets come from the environment only, never from flags,
// which other users of the machine can read in `ps`.

export const MIB = 1024 * 1024;

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
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();

export type CloudConfig = z.infer<typeof CloudConfigSchema>;
export type CloudConfigInput = z.input<typeof CloudConfigSchema>;

type Key = keyof CloudConfig;
interface OptionSource {
  key: Key;
  env: string;
  /** Command-line flag, for options that are not secrets. */
  flag?: string;
  type: 'string' | 'number';
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
  { key: 'logLevel', env: 'VIGIL_LOG_LEVEL', flag: 'log-level', type: 'string' },
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

function convert(v: string, type: 'string' | 'number', name: string): unknown {
  if (type === 'string') return v;
  const n = Number(v);
  if (v.trim() === '' || Number.isNaN(n)) throw new ConfigError(`invalid configuration: ${name}: ${JSON.stringify(v)} is not a number`);
  return n;
}
