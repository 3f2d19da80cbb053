// The one backoff policy of the agent: a fixed ladder of delays with a cap, plus jitter so a
// fleet that lost the cloud at the same moment does not come back at the same moment.

export const UPLOAD_BACKOFF_LADDER_MS = [30_000, 60_000, 120_000, 300_000, 600_000] as const;
export const UPLOAD_MAX_DELAY_MS = 1_800_000;
export const RATE_LIMIT_DEFAULT_DELAY_MS = 60_000;
/** ±20 %: wide enough to spread a fleet, narrow enough to keep the ladder's meaning. */
export const JITTER_FRACTION = 0.2;

/** Delay before retry number `attempt` (1 = first retry), with jitter from `random` ∈ [0, 1). */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = UPLOAD_BACKOFF_LADDER_MS[Math.max(0, attempt - 1)] ?? UPLOAD_MAX_DELAY_MS;
  const jitter = 1 + JITTER_FRACTION * (2 * random() - 1);
  return Math.round(Math.min(base, UPLOAD_MAX_DELAY_MS) * jitter);
}

/** Parses a Retry-After header (delta seconds or an HTTP date) into milliseconds from `now`. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
