import { Agent, request, errors as undiciErrors } from 'undici';
import type { ErrorBody } from '@vigil/protocol';
import { VigilError } from '../lib/errors.js';
import { parseRetryAfter } from '../lib/backoff.js';
import { classifyStatus, type FailureKind, type Step } from './classify.js';

export const CLOUD_REQUEST_TIMEOUT_MS = 30_000;
export const CLOUD_CONNECT_TIMEOUT_MS = 10_000;

export class CloudError extends VigilError {
  readonly kind: FailureKind;
  /** HTTP status, when the cloud answered at all. */
  readonly status: number | undefined;
  /** The cloud's own error code from the body, when it sent one. */
  readonly bodyCode: string | undefined;
  /** The cloud's explanation from the body, when it sent one (shown to people as it is). */
  readonly bodyMessage: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    code: string,
    message: string,
    o: { kind: FailureKind; status?: number; bodyCode?: string; bodyMessage?: string; retryAfterMs?: number; cause?: unknown },
  ) {
    super(code, message, { retryable: o.kind === 'retry' || o.kind === 'rate_limited', cause: o.cause });
    this.name = 'CloudError';
    this.kind = o.kind;
    this.status = o.status;
    this.bodyCode = o.bodyCode;
    this.bodyMessage = o.bodyMessage;
    this.retryAfterMs = o.retryAfterMs;
  }

  /** False when no HTTP answer came back (connection refused, reset, timed out). */
  get reachedCloud(): boolean {
    return this.status !== undefined;
  }
}

export interface CloudClientOptions {
  baseUrl: string;
  /** Current device token, if any. */
  token: () => string | undefined;
  timeoutMs?: number;
  now?: () => number;
}

/**
 * The agent's only way to the cloud: one undici connection pool, the auth header, timeouts and
 * the error classification. Uploaders, DeviceAuth (and later Heartbeat and Updater) use it.
 */
export class CloudClient {
  readonly #agent: Agent;
  readonly #base: URL;
  readonly #timeoutMs: number;

  constructor(private readonly o: CloudClientOptions) {
    this.#base = new URL(o.baseUrl);
    this.#timeoutMs = o.timeoutMs ?? CLOUD_REQUEST_TIMEOUT_MS;
    this.#agent = new Agent({ connect: { timeout: CLOUD_CONNECT_TIMEOUT_MS }, keepAliveTimeout: 10_000 });
  }

  /** JSON request to the cloud's API; resolves with the parsed body of a 2xx answer. */
  async call<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, opts: { signal?: AbortSignal; auth?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (opts.auth !== false) {
      const token = this.o.token();
      if (!token) throw new CloudError('NO_TOKEN', 'the device has no token yet', { kind: 'auth' });
      headers.authorization = `Bearer ${token}`;
    }
    if (body !== undefined) headers['content-type'] = 'application/json';
    const url = new URL(path, this.#base);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = await this.send(url, method, headers, payload, 'api', opts.signal);
    return (await res.json()) as T;
  }

  /** PUT of object bytes to a (presigned) URL, absolute or relative to the cloud. */
  async putObject(url: string, headers: Record<string, string>, body: Buffer, signal?: AbortSignal): Promise<void> {
    try {
      const res = await this.send(new URL(url, this.#base), 'PUT', { ...headers, 'content-length': String(body.length) }, body, 'object', signal);
      await res.dump();
    } catch (err) {
      // A conditional PUT (If-None-Match: *) repeated after its answer was lost: the object is
      // there already. `complete` then checks that its bytes are these.
      const conditional = Object.keys(headers).some((h) => h.toLowerCase() === 'if-none-match');
      if (conditional && err instanceof CloudError && err.status === 412) return;
      throw err;
    }
  }

  /**
   * GET of an object (a firmware bundle) as a stream, absolute or relative to the cloud, with
   * the device token when it goes to the cloud itself. No limit on the whole transfer (a
   * bundle takes as long as it takes on a slow line), only on silence between chunks.
   */
  async getObject(url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined>; body: AsyncIterable<Buffer> & { destroy(): void } }> {
    const target = new URL(url, this.#base);
    const all = { ...headers };
    const token = this.o.token();
    if (token && target.origin === this.#base.origin) all.authorization = `Bearer ${token}`;
    const res = await this.send(target, 'GET', all, undefined, 'object', signal, false);
    return { statusCode: res.statusCode, headers: res.headers, body: res.body };
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  private async send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: string | Buffer | undefined,
    step: Step,
    signal?: AbortSignal,
    wholeTimeout = true,
  ): Promise<{
    statusCode: number;
    headers: Record<string, string | string[] | undefined>;
    body: AsyncIterable<Buffer> & { destroy(): void };
    json(): Promise<unknown>;
    dump(): Promise<void>;
  }> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signals = [...(signal ? [signal] : []), ...(wholeTimeout ? [timeout] : [])];
    const combined = signals.length ? AbortSignal.any(signals) : undefined;
    let res;
    try {
      res = await request(url, {
        dispatcher: this.#agent,
        method: method as 'GET',
        headers,
        body,
        signal: combined,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
    } catch (err) {
      if (signal?.aborted) throw new CloudError('ABORTED', 'request aborted', { kind: 'retry', cause: err });
      const timedOut = (wholeTimeout && timeout.aborted) || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError;
      throw new CloudError(timedOut ? 'CLOUD_TIMEOUT' : 'CLOUD_UNREACHABLE', `${method} ${url.pathname}: ${describe(err)}`, {
        kind: 'retry',
        cause: err,
      });
    }
    if (res.statusCode >= 200 && res.statusCode < 300) {
      return { statusCode: res.statusCode, headers: res.headers, body: res.body, json: () => res.body.json(), dump: () => res.body.dump() };
    }
    let parsed: Partial<ErrorBody> = {};
    try {
      const text = await res.body.text();
      parsed = text ? (JSON.parse(text) as Partial<ErrorBody>) : {};
    } catch {
      // Not JSON (an S3 XML error, a proxy's HTML page): the status still classifies it.
    }
    const retryHeader = res.headers['retry-after'];
    const retryAfterMs = parseRetryAfter(Array.isArray(retryHeader) ? retryHeader[0] : retryHeader, this.o.now?.() ?? Date.now());
    const kind = classifyStatus(res.statusCode, step);
    throw new CloudError(`HTTP_${res.statusCode}`, `${method} ${url.pathname} → ${res.statusCode} ${parsed.code ?? ''} ${parsed.message ?? ''}`.trim(), {
      kind,
      status: res.statusCode,
      ...(parsed.code ? { bodyCode: parsed.code } : {}),
      ...(typeof parsed.message === 'string' ? { bodyMessage: parsed.message } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
}

function describe(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: string; message?: string };
    return [e.code, e.message].filter(Boolean).join(' ');
  }
  return String(err);
}
