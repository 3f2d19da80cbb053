import { CAMERA_STATES, CLOCK_STATES, REBOOT_REASONS, UPDATE_STATES, VARIANTS, VERDICTS, type HeartbeatRequest } from '@vigil/protocol';
import { MAX_CAMERA_KEY } from './uploads.js';

// The JSON schema of POST /v1/heartbeat (protocol/src/api.ts: HeartbeatRequest). Every field
// is required but `update` and `local` (agents from before updates or the status page do not send them); unknown fields are dropped (Fastify's removeAdditional), so a newer agent still
// gets through and the stored report stays bounded. Sizes are capped twice: the schema refuses
// absurd input (400), and normalizeHeartbeat() trims what is kept.

/** A heartbeat with its log lines fits well within this; beyond it → 413 BODY_TOO_LARGE. */
export const HEARTBEAT_BODY_LIMIT = 256 * 1024;
/** Log lines kept per heartbeat (the newest), and characters kept per line. */
export const MAX_LOG_LINES = 100;
export const MAX_LOG_LINE_CHARS = 1_000;
export const MAX_CAMERAS = 64;

const text = (maxLength: number) => ({ type: 'string', maxLength }) as const;
const nullableText = (maxLength: number) => ({ type: ['string', 'null'], maxLength }) as const;
const count = { type: 'integer', minimum: 0 } as const;
const epochMs = { type: 'integer', minimum: 0 } as const;
const nullableEpochMs = { type: ['integer', 'null'], minimum: 0 } as const;
const obj = (properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, required: Object.keys(properties), properties }) as const;

const base = obj({
  sentAt: epochMs,
  agentVersion: { type: 'string', minLength: 1, maxLength: 64 },
  firmware: obj({ version: nullableText(64), slot: { type: ['string', 'null'], enum: ['A', 'B', null] }, trial: { type: 'boolean' } }),
  uptimeS: { type: 'number', minimum: 0 },
  agentUptimeS: { type: 'number', minimum: 0 },
  lastReboot: obj({ reason: { type: 'string', enum: [...REBOOT_REASONS] }, detail: nullableText(1_000) }),
  verdict: { type: 'string', enum: [...VERDICTS] },
  verdictReason: nullableText(2_000),
  problems: { type: 'array', maxItems: 50, items: obj({ check: text(200), part: nullableText(200), reason: text(2_000) }) },
  escalation: {
    type: 'array',
    maxItems: 50,
    items: obj({ at: epochMs, step: { type: 'integer', enum: [1, 2, 3, 4, 5] }, part: nullableText(200), reason: text(2_000) }),
  },
  cameras: {
    type: 'array',
    maxItems: MAX_CAMERAS,
    items: obj({
      camera: { type: 'string', minLength: 1, maxLength: MAX_CAMERA_KEY },
      name: text(200),
      state: { type: 'string', enum: [...CAMERA_STATES] },
      lastCaptureAt: nullableEpochMs,
      capturesOk: count,
      failures: count,
      lastError: nullableText(2_000),
    }),
  },
  queue: {
    type: 'array',
    maxItems: MAX_CAMERAS * VARIANTS.length,
    items: obj({
      camera: { type: 'string', minLength: 1, maxLength: MAX_CAMERA_KEY },
      variant: { type: 'string', enum: [...VARIANTS] },
      depth: count,
      oldestAgeMs: nullableEpochMs,
    }),
  },
  deadLetters: count,
  evictions: count,
  disk: { type: ['object', 'null'], additionalProperties: false, required: ['totalBytes', 'freeBytes'], properties: { totalBytes: count, freeBytes: count } },
  memory: obj({ rssBytes: count, heapUsedBytes: count }),
  clock: { type: 'string', enum: [...CLOCK_STATES] },
  logs: { type: 'array', maxItems: 1_000, items: text(16_384) },
});
const update = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['releaseId', 'version', 'state', 'reason', 'at'],
  properties: { releaseId: text(64), version: text(64), state: { type: 'string', enum: [...UPDATE_STATES] }, reason: nullableText(2_000), at: epochMs },
} as const;
const local = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['hostName', 'port', 'setupPin', 'addresses'],
  properties: {
    hostName: { type: 'string', pattern: '^[a-z0-9-]{1,63}$' },
    port: { type: 'integer', minimum: 1, maximum: 65_535 },
    setupPin: { type: 'string', pattern: '^[0-9]{8}$' },
    addresses: { type: 'array', maxItems: 16, items: text(64) },
  },
} as const;
export const heartbeatBodySchema = { ...base, properties: { ...base.properties, update, local } } as const;

/** What is kept of a valid heartbeat: the newest log lines, each cut to length. */
export function normalizeHeartbeat(r: HeartbeatRequest): HeartbeatRequest {
  const logs = r.logs.slice(-MAX_LOG_LINES).map((l) => (l.length > MAX_LOG_LINE_CHARS ? `${l.slice(0, MAX_LOG_LINE_CHARS - 1)}…` : l));
  return { ...r, logs };
}
