// One frame from a camera in one ffmpeg pass: the original (full resolution, JPEG q2), the
// compressed variant (longest edge <= 1024 px, never upscaled, JPEG q18) and a 65×64
// grayscale thumbnail for the dHash. ffmpeg is supervised, not trusted: a hard wall-clock
// timer SIGKILLs it (a blocked ffmpeg can ignore SIGTERM for minutes), and every output is
// checked whatever the exit code says (drops, EOS and stalls all exit 0).
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DHASH_HEIGHT, DHASH_WIDTH, dhash, jpegProblem } from '@vigil/protocol';
import { VigilError, errorCode } from '../lib/errors.js';
import { captureError, redactSecrets } from './capture-errors.js';
import type { CaptureFiles } from './types.js';

export type RtspTransport = 'tcp' | 'udp';

/** Longest edge of the compressed variant, px. */
export const COMPRESSED_MAX_EDGE_PX = 1024;
export const ORIGINAL_JPEG_QSCALE = 2;
export const COMPRESSED_JPEG_QSCALE = 18;
export const DEFAULT_CAPTURE_TIMEOUT_MS = 120_000;
/** ffmpeg's own socket I/O timeout when the caller gives none. */
export const DEFAULT_IO_TIMEOUT_MS = 10_000;
/**
 * How much stream ffmpeg analyses before decoding (µs). Its default (5 s, in practice ~2 s
 * here) mostly estimates the frame rate, which a single frame does not need; 0.5 s halves
 * the capture time. A stream whose SPS comes later still decodes: the decoder reads it
 * in-band and ffmpeg sizes the filter graph from the first decoded frame.
 */
export const ANALYZE_DURATION_US = 500_000;
/** The thumbnail the dHash is computed from; shared with dhashOfJpeg so both hash alike. */
export const DHASH_FILTER = `scale=${DHASH_WIDTH}:${DHASH_HEIGHT}:flags=area,format=gray`;
/** How much of ffmpeg's stderr an error message carries. */
const STDERR_TAIL_CHARS = 1_000;
const STDERR_KEEP_CHARS = 8_000;

/** File names inside the per-capture work dir. */
export const CAPTURE_FILE_NAMES = {
  original: 'original.jpg',
  compressed: 'compressed.jpg',
  thumbnail: 'thumb.gray',
} as const;

export interface FrameCaptureRequest {
  /** `rtsp://…` (or `http(s)://…` snapshot, or a file path); credentials go in username/password. */
  url: string;
  username?: string;
  password?: string;
  /** RTSP lower transport; default tcp (UDP loses packets, and so frames, on busy networks). */
  transport?: RtspTransport;
  /** Per-capture directory for the outputs; created if missing. */
  workDir: string;
  /** Hard wall-clock limit in real ms; past it ffmpeg is SIGKILLed (CAPTURE_TIMEOUT). */
  timeoutMs?: number;
  /** Socket I/O timeout for ffmpeg's `-timeout` (real ms). */
  ioTimeoutMs?: number;
  /** ffmpeg binary; default `ffmpeg` from PATH. */
  ffmpegPath?: string;
  /** Aborting kills ffmpeg; the promise then rejects with CAPTURE_ABORTED once it is gone. */
  signal?: AbortSignal;
  /** Called with the child's pid right after it starts (logs, tests). */
  onSpawn?: (pid: number) => void;
}

export interface FrameCaptureResult {
  /** dHash (hex, 1024 chars) of the 65×64 grayscale thumbnail. */
  dhash: string;
  /** Both JPEGs, in the work dir; the thumbnail is already deleted. */
  files: CaptureFiles;
  /** Real milliseconds from spawn to verified outputs. */
  elapsedMs: number;
}

export type CaptureFunction = (req: FrameCaptureRequest) => Promise<FrameCaptureResult>;

/**
 * `url` with `username`/`password` percent-encoded into its userinfo (ffmpeg URL-decodes
 * them before Basic/Digest auth). A URL that already carries credentials keeps them unless
 * new ones are given.
 */
export function urlWithCredentials(url: string, username?: string, password?: string): string {
  if (!username && !password) return url;
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^/]*@)?(.*)$/is.exec(url);
  if (!m) return url; // a file path: nothing to authenticate
  const userinfo = encodeURIComponent(username ?? '') + (password === undefined ? '' : `:${encodeURIComponent(password)}`);
  return `${m[1]}${userinfo}@${m[2]}`;
}

function isNetworkUrl(url: string): { rtsp: boolean; net: boolean } {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  const rtsp = scheme === 'rtsp' || scheme === 'rtsps';
  return { rtsp, net: rtsp || scheme === 'http' || scheme === 'https' };
}

/** The ffmpeg command line for one capture (exported for tests and the bench). */
export function ffmpegArgs(req: FrameCaptureRequest, out: CaptureFiles & { thumbnail: string }): string[] {
  const input = urlWithCredentials(req.url, req.username, req.password);
  const kind = isNetworkUrl(req.url);
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y'];
  if (kind.rtsp) {
    args.push('-rtsp_transport', req.transport ?? 'tcp', '-allowed_media_types', 'video');
  }
  if (kind.net) {
    const ioMs = Math.max(1, Math.round(req.ioTimeoutMs ?? DEFAULT_IO_TIMEOUT_MS));
    args.push('-timeout', String(ioMs * 1000)); // microseconds
  }
  // Decode errors before the first keyframe are normal when joining a stream mid-GOP; with
  // a short analysis they would count against ffmpeg's -max_error_rate (2/3) and turn a
  // good capture into exit code 69. The outputs are verified below instead.
  args.push('-analyzeduration', String(ANALYZE_DURATION_US), '-max_error_rate', '1');
  args.push('-i', input);
  const max = COMPRESSED_MAX_EDGE_PX;
  args.push(
    '-filter_complex',
    '[0:v]split=3[orig][comp][thumb];' +
      // min(...) caps each edge at the source size: a small frame is never upscaled.
      `[comp]scale=w='min(${max},iw)':h='min(${max},ih)':force_original_aspect_ratio=decrease[compressed];` +
      `[thumb]${DHASH_FILTER}[hash]`,
  );
  // -update 1: ffmpeg 5.1's image2 muxer otherwise wants a %d pattern for a single file.
  args.push('-map', '[orig]', '-frames:v', '1', '-q:v', String(ORIGINAL_JPEG_QSCALE), '-f', 'image2', '-update', '1', out.original);
  args.push('-map', '[compressed]', '-frames:v', '1', '-q:v', String(COMPRESSED_JPEG_QSCALE), '-f', 'image2', '-update', '1', out.compressed);
  args.push('-map', '[hash]', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', out.thumbnail);
  return args;
}

type Ending = { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null } | { kind: 'timeout' } | { kind: 'aborted' };

/**
 * Captures one frame. Resolves with the dHash and both JPEGs; rejects with a VigilError
 * coded CAPTURE_TIMEOUT | CAPTURE_FAILED | CAPTURE_NO_FRAME | CAPTURE_CORRUPT | DISK_FULL |
 * CAPTURE_ABORTED. Either way it settles only after ffmpeg has exited, and on failure the
 * partial outputs are gone.
 */
export async function captureFrame(req: FrameCaptureRequest): Promise<FrameCaptureResult> {
  const secrets = [req.password];
  const out = {
    original: join(req.workDir, CAPTURE_FILE_NAMES.original),
    compressed: join(req.workDir, CAPTURE_FILE_NAMES.compressed),
    thumbnail: join(req.workDir, CAPTURE_FILE_NAMES.thumbnail),
  };
  const removeOutputs = (): Promise<unknown> => Promise.all(Object.values(out).map((p) => rm(p, { force: true })));
  if (req.signal?.aborted) throw captureError('CAPTURE_ABORTED', 'capture aborted before it started');
  try {
    await mkdir(req.workDir, { recursive: true });
  } catch (err) {
    throw fsError(err, `cannot create work dir ${req.workDir}`);
  }

  const started = performance.now();
  let stderr = '';
  let ending: Ending;
  try {
    ending = await runFfmpeg(req, ffmpegArgs(req, out), (chunk) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP_CHARS);
    });
  } catch (err) {
    await removeOutputs();
    throw err;
  }

  try {
    const tail = (): string => redactSecrets(stderr.trim(), secrets).slice(-STDERR_TAIL_CHARS);
    const timeoutMs = req.timeoutMs ?? DEFAULT_CAPTURE_TIMEOUT_MS;
    if (ending.kind === 'timeout') {
      throw captureError('CAPTURE_TIMEOUT', `no frame within ${timeoutMs} ms; ffmpeg killed${stderr ? `: ${tail()}` : ''}`);
    }
    if (ending.kind === 'aborted') throw captureError('CAPTURE_ABORTED', 'capture aborted; ffmpeg killed');
    if (/No space left on device/i.test(stderr)) throw captureError('DISK_FULL', `disk full while writing the capture: ${tail()}`);
    if (ending.code !== 0) {
      const how = ending.signal ? `was killed by ${ending.signal}` : `exited with code ${ending.code}`;
      throw captureError('CAPTURE_FAILED', `ffmpeg ${how}${stderr ? `: ${tail()}` : ' (no output on stderr)'}`);
    }
    const hash = await verifyOutputs(out);
    await rm(out.thumbnail, { force: true });
    return { dhash: hash, files: { original: out.original, compressed: out.compressed }, elapsedMs: performance.now() - started };
  } catch (err) {
    await removeOutputs();
    throw err instanceof VigilError ? err : fsError(err, 'cannot check the capture outputs');
  }
}

/** Spawns ffmpeg and settles once it has exited, however that came about. */
function runFfmpeg(req: FrameCaptureRequest, args: string[], onStderr: (chunk: string) => void): Promise<Ending> {
  const timeoutMs = req.timeoutMs ?? DEFAULT_CAPTURE_TIMEOUT_MS;
  return new Promise<Ending>((resolve, reject) => {
    // Own process group, so a kill also reaches anything a wrapper script (ffmpegPath) started;
    // otherwise a surviving grandchild would hold stderr open and 'close' would never come.
    const child = spawn(req.ffmpegPath ?? 'ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let killedFor: 'timeout' | 'aborted' | null = null;
    let exited = false;
    let spawnError: Error | null = null;
    // Straight to SIGKILL: the outputs are discarded anyway, and a blocked ffmpeg may sit
    // on SIGTERM for minutes.
    const kill = (why: 'timeout' | 'aborted'): void => {
      if (killedFor || child.pid === undefined) return;
      if (!exited) killedFor = why; // ffmpeg itself still ran; else only stragglers held stderr
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // the group is gone already
      }
    };
    child.once('exit', () => {
      exited = true;
    });
    const timer = setTimeout(() => kill('timeout'), Math.max(0, timeoutMs));
    const onAbort = (): void => kill('aborted');
    req.signal?.addEventListener('abort', onAbort, { once: true });
    if (req.signal?.aborted) onAbort(); // aborted while the work dir was being created
    child.stderr.setEncoding('utf8').on('data', onStderr);
    child.once('error', (err) => {
      spawnError = err;
    });
    child.once('spawn', () => {
      if (child.pid !== undefined) req.onSpawn?.(child.pid);
    });
    // 'close' comes after 'exit' once stderr is drained, or after 'error' if spawn failed.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      if (spawnError && child.pid === undefined) {
        const code = errorCode(spawnError) ?? 'unknown';
        reject(captureError('CAPTURE_FAILED', `cannot start ffmpeg (${req.ffmpegPath ?? 'ffmpeg'}): ${code}`, spawnError));
      } else if (killedFor) {
        resolve({ kind: killedFor });
      } else {
        resolve({ kind: 'exit', code, signal });
      }
    });
  });
}

/** Checks the three outputs; returns the dHash or throws NO_FRAME / CORRUPT. */
async function verifyOutputs(out: CaptureFiles & { thumbnail: string }): Promise<string> {
  const read = async (path: string): Promise<Buffer | null> => {
    try {
      return await readFile(path);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return null;
      throw err;
    }
  };
  const [original, compressed, thumbnail] = await Promise.all([read(out.original), read(out.compressed), read(out.thumbnail)]);
  const problems: [string, string][] = [];
  for (const [name, buf] of [['original', original], ['compressed', compressed]] as const) {
    const p = buf === null ? 'missing' : jpegProblem(buf);
    if (p) problems.push([name, p]);
  }
  const thumbBytes = DHASH_WIDTH * DHASH_HEIGHT;
  if (thumbnail === null) problems.push(['thumbnail', 'missing']);
  else if (thumbnail.length === 0) problems.push(['thumbnail', 'empty']);
  else if (thumbnail.length !== thumbBytes) problems.push(['thumbnail', `${thumbnail.length} bytes, want ${thumbBytes}`]);

  if (problems.length === 0) return dhash(thumbnail!);
  const what = problems.map(([n, p]) => `${n} ${p}`).join(', ');
  // No frame at all (the stream ended or dropped before one decoded) vs. a broken one.
  if (problems.length === 3 && problems.every(([, p]) => p === 'missing' || p === 'empty')) {
    throw captureError('CAPTURE_NO_FRAME', `ffmpeg exited 0 without a frame (${what})`);
  }
  throw captureError('CAPTURE_CORRUPT', `ffmpeg wrote a bad capture (${what})`);
}

function fsError(err: unknown, what: string): VigilError {
  const code = errorCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') return captureError('DISK_FULL', `${what}: ${code}`, err);
  return captureError('CAPTURE_FAILED', `${what}: ${code ?? String(err)}`, err);
}
