// A fleet of simulated devices against one cloud over loopback HTTP, each doing what the agent
// does: claimed once, then every period one frame pair (the original and the compressed
// variant, each presign → PUT → complete, the two at once as the agent's two uploaders run) and
// one heartbeat. Devices are spread evenly over the period, so the offered load is flat from
// the first second. Every request is timed and every failure counted by kind and code; nothing
// is retried, so an error here is an error the cloud gave (or a timeout).
import type { ClaimResponse, CompleteResponse, PresignResponse, Variant } from '../protocol/dist/index.js';
import { Agent, request } from 'undici';
import { benchHeartbeat, type BenchFrame } from './device-client.ts';

/** How often each device sends a frame pair and a heartbeat. */
export const PERIOD_MS = 30_000;
/** A request that has not answered by then counts as failed (TIMEOUT). */
export const REQUEST_TIMEOUT_MS = 30_000;
/** How long pairs due within the window get to finish after it. */
export const DRAIN_MS = 10_000;
export const REQUEST_KINDS = ['claim', 'presign', 'put', 'complete', 'heartbeat'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

export const CAMERA = 'cam-1';

export interface FramePair {
  original: BenchFrame;
  compressed: BenchFrame;
}

class RequestFailed extends Error {
  readonly kind: RequestKind;
  readonly code: string;

  constructor(kind: RequestKind, code: string, message: string) {
    super(message);
    this.kind = kind;
    this.code = code;
  }
}

/** Latencies (ms) per request kind and per whole pair, and failures by kind and code. */
export class LoadStats {
  readonly latency: Record<RequestKind | 'pair', number[]> = { claim: [], presign: [], put: [], complete: [], heartbeat: [], pair: [] };
  /** "presign 503 SERVICE_UNAVAILABLE" → count. */
  readonly errors = new Map<string, number>();
  /** The first message seen for each error key, to say what went wrong. */
  readonly examples = new Map<string, string>();

  fail(e: RequestFailed): void {
    const key = `${e.kind} ${e.code}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
    if (!this.examples.has(key)) this.examples.set(key, e.message.slice(0, 300));
  }

  errorCount(kind: RequestKind): number {
    let n = 0;
    for (const [key, count] of this.errors) if (key.startsWith(`${kind} `)) n += count;
    return n;
  }
}

/** The device API over one undici Agent: every simulated device shares its connection pool. */
export class FleetClient {
  readonly #agent: Agent;
  readonly #base: string;
  stats = new LoadStats();

  constructor(baseUrl: string, connections: number) {
    this.#base = baseUrl;
    this.#agent = new Agent({ connections, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: 60_000 });
  }

  /** One request, timed under `kind`; the parsed JSON answer, or a RequestFailed. */
  async send<T>(kind: RequestKind, method: 'POST' | 'PUT', path: string, o: { token?: string; json?: unknown; body?: Buffer; headers?: Record<string, string> }): Promise<T> {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (o.json !== undefined) headers['content-type'] = 'application/json';
    const t0 = performance.now();
    let status: number;
    let text: string;
    try {
      const res = await request(new URL(path, this.#base), {
        dispatcher: this.#agent,
        method,
        headers,
        body: o.json === undefined ? o.body : JSON.stringify(o.json),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const e = err as { code?: string; name?: string; message?: string };
      const code = e.name === 'TimeoutError' ? 'TIMEOUT' : (e.code ?? e.name ?? 'ERROR');
      throw new RequestFailed(kind, code, `${method} ${path}: ${e.message ?? String(err)}`);
    }
    if (status >= 400) {
      let code = 'HTTP';
      try {
        code = (JSON.parse(text) as { code?: string }).code ?? code;
      } catch {
        // not a JSON error body: the status says enough
      }
      throw new RequestFailed(kind, `${status} ${code}`, `${method} ${path}: ${status} ${text}`);
    }
    this.stats.latency[kind].push(performance.now() - t0);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** Waits for requests in flight, then closes the connections. */
  close(): Promise<void> {
    return this.#agent.close();
  }

  /** Fails every request in flight and closes the connections at once. */
  destroy(): Promise<void> {
    return this.#agent.destroy();
  }
}

/** Runs `fn` over 0..n-1 with at most `limit` calls in flight. */
async function pool(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, limit) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/**
 * Issues `n` claim codes (the admin API) and claims a device with each; returns the device
 * tokens and how long the claims alone took. Claim failures are fatal: there is no fleet.
 */
export async function claimFleet(client: FleetClient, adminToken: string, n: number, concurrency = 32): Promise<{ tokens: string[]; claimMs: number }> {
  const codes: string[] = [];
  await pool(n, concurrency, async (i) => {
    codes[i] = (await client.send<{ code: string }>('claim', 'POST', '/admin/v1/claim-codes', { token: adminToken, json: { site: `load-${i % 50}` } })).code;
  });
  client.stats.latency.claim.length = 0;
  const tokens: string[] = [];
  const t0 = performance.now();
  await pool(n, concurrency, async (i) => {
    tokens[i] = (await client.send<ClaimResponse>('claim', 'POST', '/v1/claim', { json: { code: codes[i], hardwareId: `load-device-${i}` } })).token;
  });
  return { tokens, claimMs: performance.now() - t0 };
}

export interface SteadyResult {
  durationMs: number;
  /** Pairs due within the window (devices × window / period). */
  offeredPairs: number;
  /** Pairs whose both variants completed within the window. */
  pairsInWindow: number;
  /** Pairs whose both variants completed, within the window or its drain. */
  pairsDone: number;
  /** Frame uploads (either variant) completed within the window. */
  framesInWindow: number;
  heartbeatsInWindow: number;
  /** Pairs due within the window that were not done when it ended (in flight, or queued behind a slow one). */
  backlogAtEnd: number;
  /** Of those, still not done after the drain: abandoned. */
  abandoned: number;
  /** How late pairs started after they were due (ms): the device's own queue growing. */
  startLag: number[];
}

/** Sleeps until performance.now() reaches `at`; false if stopped first. */
function sleepUntil(at: number, signal?: AbortSignal): Promise<boolean> {
  const ms = at - performance.now();
  if (signal?.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The steady state: every device sends a pair and a heartbeat each period for `durationMs`.
 * A device's pairs run one after the other (the agent's upload queue): when the cloud is slow,
 * the next pair starts late and the backlog shows it. After the window, pairs already due get
 * up to `drainMs` to finish; what is left then is abandoned (and the client closed at once).
 */
export async function runSteady(client: FleetClient, tokens: string[], frames: FramePair[], durationMs: number, drainMs = DRAIN_MS): Promise<SteadyResult> {
  const n = tokens.length;
  const stats = client.stats;
  const stop = new AbortController();
  const t0 = performance.now() + 200;
  const end = t0 + durationMs;
  const wall0 = Date.now() + 200;
  const offsetOf = (i: number) => (i * PERIOD_MS) / n;
  let offeredPairs = 0;
  for (let i = 0; i < n; i++) offeredPairs += Math.max(0, Math.ceil((durationMs - offsetOf(i)) / PERIOD_MS));
  const r: SteadyResult = { durationMs, offeredPairs, pairsInWindow: 0, pairsDone: 0, framesInWindow: 0, heartbeatsInWindow: 0, backlogAtEnd: 0, abandoned: 0, startLag: [] };
  let finished = 0;
  let finishedInWindow = 0;

  // Once the drain gives up, the requests cut short are not the cloud's errors.
  const failed = (err: unknown): false => {
    if (!(err instanceof RequestFailed)) throw err;
    if (!stop.signal.aborted) stats.fail(err);
    return false;
  };

  const upload = async (token: string, variant: Variant, f: BenchFrame, capturedAt: number): Promise<boolean> => {
    try {
      const p = await client.send<PresignResponse>('presign', 'POST', '/v1/uploads/presign', {
        token,
        json: { camera: CAMERA, capturedAt, variant, bytes: f.bytes.length, sha256: f.sha256, dhash: f.dhash },
      });
      if (p.status === 'upload') {
        await client.send('put', p.method, p.url, { headers: p.headers, body: f.bytes });
        await client.send<CompleteResponse>('complete', 'POST', '/v1/uploads/complete', { token, json: { uploadId: p.uploadId } });
      }
      if (performance.now() < end) r.framesInWindow++;
      return true;
    } catch (err) {
      return failed(err);
    }
  };

  const frameLoop = async (i: number): Promise<void> => {
    for (let k = 0; ; k++) {
      const due = t0 + offsetOf(i) + k * PERIOD_MS;
      if (due >= end || !(await sleepUntil(due, stop.signal))) return;
      const started = performance.now();
      r.startLag.push(started - due);
      const pair = frames[(i + k) % frames.length]!;
      const capturedAt = Math.round(wall0 + offsetOf(i) + k * PERIOD_MS);
      // Both variants at once, as the agent's two uploaders for a camera run.
      const ok = await Promise.all([upload(tokens[i]!, 'original', pair.original, capturedAt), upload(tokens[i]!, 'compressed', pair.compressed, capturedAt)]);
      const done = performance.now();
      if (stop.signal.aborted) return;
      finished++;
      if (done < end) finishedInWindow++;
      if (ok[0] && ok[1]) {
        stats.latency.pair.push(done - started);
        r.pairsDone++;
        if (done < end) r.pairsInWindow++;
      }
    }
  };

  const heartbeatLoop = async (i: number): Promise<void> => {
    // Half a period after the device's pair, as an agent's timers would drift apart.
    const offset = (offsetOf(i) + PERIOD_MS / 2) % PERIOD_MS;
    for (let k = 0; ; k++) {
      const due = t0 + offset + k * PERIOD_MS;
      if (due >= end || !(await sleepUntil(due, stop.signal))) return;
      const sentAt = Date.now();
      try {
        await client.send('heartbeat', 'POST', '/v1/heartbeat', { token: tokens[i], json: benchHeartbeat(CAMERA, { sentAt, uptimeS: 3600 + Math.round((sentAt - wall0) / 1000), capturesOk: 120 + k }) });
        if (performance.now() < end) r.heartbeatsInWindow++;
      } catch (err) {
        failed(err);
      }
    }
  };

  const all = Promise.all(Array.from({ length: n }, (_, i) => [frameLoop(i), heartbeatLoop(i)]).flat());
  await sleepUntil(end);
  r.backlogAtEnd = offeredPairs - finishedInWindow;
  let timer: NodeJS.Timeout | undefined;
  const drained = await Promise.race([all.then(() => true), new Promise<false>((res) => (timer = setTimeout(() => res(false), drainMs)))]);
  clearTimeout(timer);
  r.abandoned = offeredPairs - finished;
  if (!drained) {
    stop.abort();
    await client.destroy();
    await all;
  }
  return r;
}
