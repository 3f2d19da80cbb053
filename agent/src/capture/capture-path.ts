// Which way a camera is read: its RTSP stream (ffmpeg) by default, or its snapshot URI.
// In 'auto' a camera whose RTSP keeps failing falls back to the snapshot URI, and goes back
// to RTSP once a periodic RTSP try works again: some cameras' RTSP servers hang for hours
// while their web server still answers.
import type { CapturePath } from '@vigil/protocol';
import { errorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { captureFrame, type CaptureFunction, type FrameCaptureRequest, type FrameCaptureResult } from './ffmpeg-capture.js';
import { AuthState } from './http-auth.js';
import { captureSnapshot } from './snapshot.js';

export type CapturePathMode = 'auto' | CapturePath;

/** RTSP failures in a row before 'auto' switches to the snapshot URI. */
export const RTSP_FAILURES_BEFORE_FALLBACK = 3;
/** On the snapshot path, every this many captures tries RTSP instead. */
export const RTSP_RETRY_EVERY = 10;

/** Failures that say nothing about the camera's RTSP: no reason to fall back. */
const NOT_THE_CAMERA = new Set(['CAPTURE_ABORTED', 'DISK_FULL']);

export interface CapturePathOptions {
  mode: CapturePathMode;
  /** RTSP URL (credentials apart); undefined: snapshot only. */
  rtspUrl: string | undefined;
  snapshotUrl: string | undefined;
  log: Logger;
  failuresBeforeFallback?: number;
  rtspRetryEvery?: number;
  /** Replace the real captures (unit tests). */
  rtsp?: CaptureFunction;
  snapshot?: CaptureFunction;
}

export class CaptureRouter {
  #path: CapturePath;
  #rtspFailures = 0;
  #sinceRtspTry = 0;
  readonly #auth = new AuthState();
  readonly #o: CapturePathOptions;

  constructor(o: CapturePathOptions) {
    if (!o.rtspUrl && !o.snapshotUrl) throw new RangeError('a camera needs an RTSP URL or a snapshot URI');
    if (o.mode === 'rtsp' && !o.rtspUrl) throw new RangeError('capture path "rtsp" needs an RTSP URL');
    if (o.mode === 'snapshot' && !o.snapshotUrl) throw new RangeError('capture path "snapshot" needs a snapshot URI');
    this.#o = o;
    this.#path = o.mode === 'snapshot' || !o.rtspUrl ? 'snapshot' : 'rtsp';
  }

  /** The path the next capture takes (for status, heartbeat and inventory). */
  get path(): CapturePath {
    return this.#path;
  }

  /** A CaptureFunction for the camera worker; `req.url` is ignored, the router picks it. */
  readonly capture: CaptureFunction = async (req) => {
    const { mode } = this.#o;
    if (this.#path === 'rtsp') return this.viaRtsp(req, mode === 'auto');
    // On the snapshot path in 'auto': now and then, RTSP again (a failed try costs this capture)
    if (mode === 'auto' && this.#o.rtspUrl && ++this.#sinceRtspTry >= (this.#o.rtspRetryEvery ?? RTSP_RETRY_EVERY)) {
      this.#sinceRtspTry = 0;
      return this.viaRtsp(req, true);
    }
    return this.viaSnapshot(req);
  };

  private async viaRtsp(req: FrameCaptureRequest, mayFallBack: boolean): Promise<FrameCaptureResult> {
    const o = this.#o;
    try {
      const r = await (o.rtsp ?? captureFrame)({ ...req, url: o.rtspUrl! });
      if (this.#path === 'snapshot') o.log.info('RTSP works again; back from the snapshot URI');
      this.#path = 'rtsp';
      this.#rtspFailures = 0;
      return r;
    } catch (err) {
      if (!NOT_THE_CAMERA.has(errorCode(err) ?? '')) this.#rtspFailures++;
      const limit = o.failuresBeforeFallback ?? RTSP_FAILURES_BEFORE_FALLBACK;
      if (mayFallBack && o.snapshotUrl && this.#path === 'rtsp' && this.#rtspFailures >= limit) {
        this.#path = 'snapshot';
        this.#sinceRtspTry = 0;
        o.log.warn({ failures: this.#rtspFailures, code: errorCode(err) }, 'RTSP keeps failing; capturing through the snapshot URI');
      }
      throw err;
    }
  }

  private viaSnapshot(req: FrameCaptureRequest): Promise<FrameCaptureResult> {
    const snapshot = this.#o.snapshot ?? ((r: FrameCaptureRequest) => captureSnapshot({ ...r, auth: this.#auth }));
    return snapshot({ ...req, url: this.#o.snapshotUrl! });
  }
}
