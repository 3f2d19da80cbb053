// Capture through a camera's snapshot URI (ONVIF GetSnapshotUri): one HTTP GET answering the
// camera's Digest or Basic challenge, the body checked to be a whole JPEG by its bytes (a
// camera that answers 200 with an HTML login page has not sent a frame), then the same ffmpeg
// pass as for RTSP makes both variants and the dHash from the file.
import { rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { jpegProblem } from '@vigil/protocol';
import { VigilError } from '../lib/errors.js';
import { captureError } from './capture-errors.js';
import { captureFrame, type FrameCaptureRequest, type FrameCaptureResult } from './ffmpeg-capture.js';
import { AuthState, authorization, parseChallenges } from './http-auth.js';

/** A snapshot larger than this is not a camera's JPEG. */
export const SNAPSHOT_MAX_BYTES = 20 * 1024 * 1024;
export const SNAPSHOT_FILE_NAME = 'snapshot.jpg';

/** Snapshot error codes → retryable (the next tick may do better). */
export const SNAPSHOT_ERROR_RETRYABLE = {
  /** The camera refused the credentials (or asked for an auth scheme we do not speak). */
  SNAPSHOT_AUTH_FAILED: false,
  /** Not reachable, timed out, or a non-2xx answer. */
  SNAPSHOT_FAILED: true,
  /** 2xx, but the body is not a JPEG (an HTML page, an error text). */
  SNAPSHOT_NOT_JPEG: true,
  /** A JPEG that is cut short or otherwise broken. */
  SNAPSHOT_CORRUPT: true,
  SNAPSHOT_TOO_LARGE: false,
} as const satisfies Record<string, boolean>;
export type SnapshotErrorCode = keyof typeof SNAPSHOT_ERROR_RETRYABLE;

function snapshotError(code: SnapshotErrorCode, message: string, cause?: unknown): VigilError {
  return new VigilError(code, message, { retryable: SNAPSHOT_ERROR_RETRYABLE[code], cause });
}

export interface SnapshotRequest {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /** Whole request, real ms. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  maxBytes?: number;
  /** Keeps the Digest nonce count across requests to one camera. */
  auth?: AuthState;
}

/** GETs the snapshot; resolves with a JPEG that passed the byte checks. */
export async function fetchSnapshot(req: SnapshotRequest): Promise<Buffer> {
  const url = new URL(req.url);
  // Credentials in the URL are used like the configured ones, never sent as they are.
  const username = req.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = req.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  url.username = '';
  url.password = '';
  const where = `${url.origin}${url.pathname}`;
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
  const state = req.auth ?? new AuthState();
  const get = async (auth?: string) => {
    try {
      return await request(url, { method: 'GET', signal, headers: auth ? { authorization: auth } : {} });
    } catch (err) {
      const why = timeout.aborted ? `no answer within ${req.timeoutMs} ms` : (err as Error).message;
      throw snapshotError('SNAPSHOT_FAILED', `snapshot ${where}: ${why}`, err);
    }
  };
  let res = await get();
  if (res.statusCode === 401) {
    const header = res.headers['www-authenticate'];
    await res.body.dump();
    const challenges = parseChallenges(Array.isArray(header) ? header.join(', ') : (header ?? ''));
    if (username === undefined) throw snapshotError('SNAPSHOT_AUTH_FAILED', `snapshot ${where}: the camera wants credentials and none are set`);
    const auth = authorization(challenges, { method: 'GET', uri: url.pathname + url.search, username, password: password ?? '' }, state);
    if (!auth) throw snapshotError('SNAPSHOT_AUTH_FAILED', `snapshot ${where}: unsupported authentication "${String(header)}"`);
    res = await get(auth);
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      throw snapshotError('SNAPSHOT_AUTH_FAILED', `snapshot ${where}: the camera refused the credentials (${res.statusCode})`);
    }
  }
  if (res.statusCode < 200 || res.statusCode >= 300) {
    await res.body.dump();
    throw snapshotError('SNAPSHOT_FAILED', `snapshot ${where}: HTTP ${res.statusCode}`);
  }
  const max = req.maxBytes ?? SNAPSHOT_MAX_BYTES;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > max) {
        res.body.destroy();
        throw snapshotError('SNAPSHOT_TOO_LARGE', `snapshot ${where}: more than ${max} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof VigilError) throw err;
    throw snapshotError('SNAPSHOT_FAILED', `snapshot ${where}: ${timeout.aborted ? `body not complete within ${req.timeoutMs} ms` : (err as Error).message}`, err);
  }
  const body = Buffer.concat(chunks);
  if (body.length < 3 || body[0] !== 0xff || body[1] !== 0xd8 || body[2] !== 0xff) {
    const type = String(res.headers['content-type'] ?? 'no content type');
    const start = body.subarray(0, 24).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
    throw snapshotError('SNAPSHOT_NOT_JPEG', `snapshot ${where}: not a JPEG (${type}, ${body.length} bytes, starting "${start}")`);
  }
  const problem = jpegProblem(body);
  if (problem) throw snapshotError('SNAPSHOT_CORRUPT', `snapshot ${where}: ${problem}`);
  return body;
}

/**
 * A capture through the snapshot URI: `req.url` is the snapshot URI. Same outputs and error
 * contract as captureFrame, plus the SNAPSHOT_* codes.
 */
export async function captureSnapshot(req: FrameCaptureRequest & { auth?: AuthState }): Promise<FrameCaptureResult> {
  const started = performance.now();
  const timeoutMs = req.timeoutMs ?? 30_000;
  const jpeg = await fetchSnapshot({ url: req.url, username: req.username, password: req.password, timeoutMs, signal: req.signal, ...(req.auth ? { auth: req.auth } : {}) });
  const file = join(req.workDir, SNAPSHOT_FILE_NAME);
  try {
    await mkdir(req.workDir, { recursive: true });
    await writeFile(file, jpeg);
  } catch (err) {
    await rm(file, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    throw captureError(code === 'ENOSPC' || code === 'EDQUOT' ? 'DISK_FULL' : 'CAPTURE_FAILED', `cannot keep the snapshot: ${code ?? String(err)}`, err);
  }
  try {
    const left = Math.max(1, timeoutMs - (performance.now() - started));
    const { url: _url, username: _u, password: _p, ...rest } = req;
    const r = await captureFrame({ ...rest, url: file, timeoutMs: left });
    return { ...r, elapsedMs: performance.now() - started };
  } finally {
    await rm(file, { force: true });
  }
}
