// The status page's live thumbnails: the latest captured frame of each camera, 320 px wide.
//
// Kept: the compressed variant's bytes of each camera's latest accepted capture (<= 1024 px at
// q18, tens of KB; at most 1 MiB is kept per camera), in memory. Read while the outbox takes the
// capture, so the capture path waits for nothing more than it did. Scaled only when someone asks:
// one ffmpeg run (lowered priority, one at a time, hard timeout) per camera per new frame while
// the page is open, none at all while nobody looks. Not the compressed bytes themselves: a
// phone on the site's Wi-Fi would fetch ~100 KB per camera per refresh.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { jpegProblem } from '@vigil/protocol';
import type { CaptureSink } from '../capture/types.js';
import { VigilError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

export const THUMBNAIL_WIDTH_PX = 320;
/** A compressed frame bigger than this is not kept (it is never that big: 1024 px at q18). */
export const THUMBNAIL_SOURCE_MAX_BYTES = 1024 ** 2;
export const THUMBNAIL_TIMEOUT_MS = 10_000;
export const THUMBNAIL_JPEG_QSCALE = 5;
/** Below the agent's own priority: the page never takes the CPU from capture and upload. */
export const THUMBNAIL_NICE = 10;

export interface Thumbnail {
  jpeg: Buffer;
  /** When the frame was captured (epoch ms). */
  capturedAt: number;
}

interface Latest {
  capturedAt: number;
  source: Buffer;
  /** The scaled frame, made on the first request. */
  thumb: Promise<Buffer> | null;
}

/** ffmpeg's arguments: one JPEG on stdin, one JPEG at most `width` wide (never upscaled) on stdout. */
export function thumbnailArgs(width = THUMBNAIL_WIDTH_PX): string[] {
  return [
    '-hide_banner', '-loglevel', 'error',
    '-f', 'jpeg_pipe', '-i', 'pipe:0',
    '-vf', `scale=w='min(${width},iw)':h=-2:flags=area`,
    '-frames:v', '1', '-q:v', String(THUMBNAIL_JPEG_QSCALE),
    '-f', 'image2pipe', '-c:v', 'mjpeg', 'pipe:1',
  ];
}

export class Thumbnails {
  readonly #latest = new Map<string, Latest>();
  /** One ffmpeg at a time: a page with eight cameras starts eight requests at once. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: { ffmpegPath: string; log: Logger; width?: number; timeoutMs?: number }) {}

  /**
   * `sink` (the outbox), also keeping the compressed frame of every capture it accepts. The
   * sink's answer is the capture's answer: a frame the thumbnails could not read changes nothing.
   */
  tap(sink: CaptureSink): CaptureSink {
    return async (capture) => {
      // Started before the sink moves the file; a read that loses that race only skips a frame.
      const read = readFile(capture.files.compressed).catch(() => null);
      let accepted = false;
      try {
        await sink(capture);
        accepted = true;
      } finally {
        // Awaited either way; kept only when the outbox took the capture (a refused one is not the camera's latest)
        const source = await read;
        if (accepted && source !== null && source.length <= THUMBNAIL_SOURCE_MAX_BYTES) this.keep(capture.camera, capture.capturedAt, source);
      }
    };
  }

  private keep(camera: string, capturedAt: number, source: Buffer): void {
    const prev = this.#latest.get(camera);
    if (prev && prev.capturedAt >= capturedAt) return;
    this.#latest.set(camera, { capturedAt, source, thumb: null });
  }

  /** When the latest kept frame of `camera` was captured; null before its first. */
  latestAt(camera: string): number | null {
    return this.#latest.get(camera)?.capturedAt ?? null;
  }

  /** The camera's latest frame, scaled; null when it has none yet. Rejects when ffmpeg fails. */
  async get(camera: string): Promise<Thumbnail | null> {
    const entry = this.#latest.get(camera);
    if (!entry) return null;
    if (entry.thumb === null) {
      const run = this.#queue.then(() => this.scale(entry.source));
      this.#queue = run.catch(() => undefined);
      entry.thumb = run;
      // A failed run is tried again on the next request, not cached.
      run.catch((err: unknown) => {
        if (entry.thumb === run) entry.thumb = null;
        this.o.log.warn({ camera, err: (err as Error).message }, 'thumbnail failed');
      });
    }
    return { jpeg: await entry.thumb, capturedAt: entry.capturedAt };
  }

  private scale(source: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.o.ffmpegPath, thumbnailArgs(this.o.width), { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let outBytes = 0;
      let stderr = '';
      let settled = false;
      const finish = (err: Error | null, jpeg?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(jpeg!);
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(new VigilError('THUMBNAIL_TIMEOUT', `ffmpeg made no thumbnail in ${this.o.timeoutMs ?? THUMBNAIL_TIMEOUT_MS} ms`));
      }, this.o.timeoutMs ?? THUMBNAIL_TIMEOUT_MS);
      child.on('spawn', () => {
        try {
          setPriority(child.pid!, THUMBNAIL_NICE);
        } catch {
          // Gone already, or not allowed: it still runs, only not lowered
        }
      });
      child.on('error', (err) => finish(new VigilError('THUMBNAIL_FAILED', `cannot run ffmpeg: ${err.message}`, { cause: err })));
      child.stdout.on('data', (b: Buffer) => {
        outBytes += b.length;
        if (outBytes > THUMBNAIL_SOURCE_MAX_BYTES) child.kill('SIGKILL');
        else out.push(b);
      });
      child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString('utf8')).slice(-1000)));
      // ffmpeg may exit before reading all of a broken input: EPIPE is its error, not ours
      child.stdin.on('error', () => undefined);
      child.stdin.end(source);
      child.on('close', (code, signal) => {
        const jpeg = Buffer.concat(out);
        const problem = code === 0 ? jpegProblem(jpeg) : `ffmpeg exited with ${signal ?? code}`;
        if (problem) finish(new VigilError('THUMBNAIL_FAILED', `thumbnail: ${problem}${stderr ? `: ${stderr.trim()}` : ''}`));
        else finish(null, jpeg);
      });
    });
  }
}
