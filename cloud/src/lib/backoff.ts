// The cloud's one backoff policy for outbound deliveries (webhooks now; more later): a fixed
// ladder of delays with a cap, plus jitter so a receiver that comes back is not hit by every
// queued notification at the same instant.

export const NOTIFY_BACKOFF_LADDER_MS = [10_000, 30_000, 60_000, 120_000, 300_000, 600_000] as const;
export const NOTIFY_MAX_DELAY_MS = 1_800_000;
/** A receiver's Retry-After is honoured up to this; a longer one would park the row for days. */
export const NOTIFY_MAX_RETRY_AFTER_MS = 3_600_000;
/** ±20 %: spreads retries without changing the ladder's meaning. */
export const JITTER_FRACTION = 0.2;

/** Delay before retry number `attempt` (1 = the first retry), jittered by `random` ∈ [0, 1). */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = NOTIFY_BACKOFF_LADDER_MS[Math.max(0, attempt - 1)] ?? NOTIFY_MAX_DELAY_MS;
  const jitter = 1 + JITTER_FRACTION * (2 * random() - 1);
  return Math.round(Math.min(base, NOTIFY_MAX_DELAY_MS) * jitter);
}

/** Parses Retry-After (delta seconds or an HTTP date) into milliseconds from `now`; capped. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, NOTIFY_MAX_RETRY_AFTER_MS);
}
