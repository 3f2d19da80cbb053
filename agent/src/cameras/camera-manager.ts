// Turns the cameras the agent knows (its config, ONVIF discovery) into running capture workers
// in the supervision tree: a new camera gets a worker, a camera at a new address or with new
// credentials gets a fresh one pointed at it, a camera that is gone has its worker stopped
// (a normal stop: no restart churn) while its uploads keep draining.
import { join } from 'node:path';
import type { CameraInventoryItem, CapturePath } from '@vigil/protocol';
import type { AgentTree } from '../agent-tree.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { CameraWorker } from '../capture/camera-worker.js';
import { CaptureRouter, type CapturePathMode } from '../capture/capture-path.js';
import type { RtspTransport } from '../capture/ffmpeg-capture.js';
import type { CaptureSink } from '../capture/types.js';
import type { CameraRecord } from './types.js';

/** Everything a capture worker needs to know about one camera. */
export interface CameraSpec {
  key: string;
  name: string;
  rtspUrl: string | null;
  snapshotUrl: string | null;
  username?: string | undefined;
  password?: string | undefined;
  transport: RtspTransport;
  intervalMs: number;
  captureTimeoutMs: number;
  capturePath: CapturePathMode;
}

export interface CameraManagerOptions {
  tree: AgentTree;
  clock: Clock;
  log: Logger;
  /** Capture work dirs live under it, on the spool's filesystem. */
  workDir: string;
  sink: CaptureSink;
  ffmpegPath: string;
  rtspTimeoutMs: number;
}

interface Running {
  spec: CameraSpec;
  router: CaptureRouter;
  /** What the worker was built from: a change in it means a new worker. */
  signature: string;
}

export class CameraManager {
  readonly #running = new Map<string, Running>();
  /** Serialises changes: two quick discoveries must not build two workers for one camera. */
  #queue: Promise<void> = Promise.resolve();

  constructor(private readonly o: CameraManagerOptions) {}

  /** Captures `spec` (starting or repointing its worker); null stops the camera's capture. */
  set(key: string, spec: CameraSpec | null): Promise<void> {
    const next = this.#queue.then(() => this.apply(key, spec));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** The capture path a camera is on now, or null when it is not being captured. */
  path(key: string): CapturePath | null {
    return this.#running.get(key)?.router.path ?? null;
  }

  keys(): string[] {
    return [...this.#running.keys()];
  }

  private async apply(key: string, spec: CameraSpec | null): Promise<void> {
    const { tree, log } = this.o;
    const current = this.#running.get(key);
    if (spec === null || (!spec.rtspUrl && !spec.snapshotUrl)) {
      tree.addCamera(key);
      if (!current) return;
      this.#running.delete(key);
      await tree.setCapture(key, null);
      log.info({ camera: key }, 'camera capture stopped');
      return;
    }
    const signature = JSON.stringify(spec);
    if (current?.signature === signature) return;
    const clog = log.child({ camera: key });
    const router = new CaptureRouter({ mode: spec.capturePath, rtspUrl: spec.rtspUrl ?? undefined, snapshotUrl: spec.snapshotUrl ?? undefined, log: clog });
    const worker = new CameraWorker({
      camera: {
        id: key,
        name: spec.name,
        // The router picks the URL for each capture; this one names the camera in logs.
        url: spec.rtspUrl ?? spec.snapshotUrl!,
        transport: spec.transport,
        ...(spec.username !== undefined ? { username: spec.username } : {}),
        ...(spec.password !== undefined ? { password: spec.password } : {}),
        intervalMs: spec.intervalMs,
        captureTimeoutMs: spec.captureTimeoutMs,
      },
      clock: this.o.clock,
      log: clog,
      workDir: join(this.o.workDir, key),
      sink: this.o.sink,
      capture: router.capture,
      ffmpegPath: this.o.ffmpegPath,
      rtspTimeoutMs: this.o.rtspTimeoutMs,
    });
    this.#running.set(key, { spec, router, signature });
    await tree.setCapture(key, { worker, name: spec.name, intervalMs: spec.intervalMs, captureTimeoutMs: spec.captureTimeoutMs });
    if (current) log.info({ camera: key, rtsp: redact(spec.rtspUrl), snapshot: redact(spec.snapshotUrl) }, 'camera capture repointed');
    else log.info({ camera: key, rtsp: redact(spec.rtspUrl), snapshot: redact(spec.snapshotUrl), path: router.path }, 'camera capture started');
  }
}

/** A URL for the log, without credentials. */
function redact(url: string | null): string | null {
  if (!url || !URL.canParse(url)) return url;
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

/** The inventory line of one camera, as the cloud gets it. */
export function inventoryItem(r: CameraRecord, path: CapturePath | null): CameraInventoryItem {
  return {
    camera: r.key,
    name: r.name,
    source: r.source,
    manufacturer: r.manufacturer,
    model: r.model,
    firmware: r.firmware,
    serial: r.serial,
    mac: r.mac,
    address: r.address,
    capturePath: path ?? (r.streamUri ? 'rtsp' : 'snapshot'),
    present: r.present,
    lastError: r.lastError ? `${r.lastError.code}: ${r.lastError.message}` : null,
    lastSeenAt: r.lastSeenAt,
  };
}
