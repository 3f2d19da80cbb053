// The doctor's cameras: every camera the agent would capture (the config's, and those discovery
// recorded), and one fresh frame from each, taken now the way the agent takes it (the same
// capture path, ffmpeg pass, hard timeout and credentials) and kept as <framesDir>/<key>.jpg.
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentConfig } from '../config.js';
import type { CameraSpec } from '../cameras/camera-manager.js';
import { discoveredCamera } from '../cameras/agent-cameras.js';
import { configuredCamera, configuredRecord } from '../cameras/configured.js';
import type { CredentialSource } from '../cameras/credentials.js';
import type { CameraRecord } from '../cameras/types.js';
import { CaptureRouter } from '../capture/capture-path.js';
import { redactSecrets } from '../capture/capture-errors.js';
import type { FrameCaptureResult } from '../capture/ffmpeg-capture.js';
import { errorCode } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import { finding, formatBytes, type Finding } from './findings.js';

/** Cameras captured at once: the running agent is capturing too, on the same small board. */
export const DOCTOR_CAPTURE_CONCURRENCY = 2;

export interface DoctorCamera {
  record: CameraRecord;
  /** How to capture it; null when the agent cannot (lost, no stream address). */
  spec: CameraSpec | null;
}

/** The config's cameras as configured now, then the discovered ones the registry holds. */
export function doctorCameras(config: AgentConfig, registry: CameraRecord[], credentials: CredentialSource, now: number): DoctorCamera[] {
  const configured = config.cameras.map((cam) => ({ record: configuredRecord(cam, now), spec: configuredCamera(config, cam) }));
  const discovered = registry.filter((r) => r.source === 'onvif').map((r) => ({ record: r, spec: discoveredCamera(config, r, credentials) }));
  return [...configured, ...discovered];
}

const describe = (r: CameraRecord): string => `${r.key}${r.name !== r.key ? ` "${r.name}"` : ''}`;
const lastError = (r: CameraRecord): string | null => (r.lastError ? `${r.lastError.code}: ${r.lastError.message}` : null);

export function camerasFinding(cams: DoctorCamera[]): Finding {
  const list = cams.map(({ record: r }) => ({
    camera: r.key,
    name: r.name,
    source: r.source,
    address: r.address,
    present: r.present,
    lastError: lastError(r),
  }));
  if (cams.length === 0) {
    return finding(
      'cameras',
      'fail',
      'no cameras: none in the config file and none found on the network',
      'check that the cameras are powered and on the same network as this device (ONVIF turned on in each camera), or add them to the config file',
      { cameras: list },
    );
  }
  const lines = cams.map(({ record: r }) => `${describe(r)} at ${r.address ?? 'no address'} (${r.source === 'config' ? 'config' : 'found'}${r.present ? '' : ', not seen lately'}${r.lastError ? `, last error ${r.lastError.code}` : ''})`);
  return finding('cameras', 'ok', `${cams.length} camera${cams.length === 1 ? '' : 's'}: ${lines.join('; ')}`, null, { cameras: list });
}

/** What a technician can do about a capture that failed with this code. */
export function captureAdvice(code: string, r: CameraRecord): string {
  const at = r.address ? ` (${r.address})` : '';
  switch (code) {
    case 'CAPTURE_TIMEOUT':
      return `the camera${at} connected but sent no picture in time: power-cycle it, and check its video stream is on (H.264) and the network cable is good`;
    case 'CAPTURE_FAILED':
    case 'SNAPSHOT_FAILED':
      return `check that the camera${at} is powered and connected, that its address has not changed, and its user name and password (vigil-agent camera-credentials)`;
    case 'SNAPSHOT_AUTH_FAILED':
    case 'ONVIF_AUTH_FAILED':
    case 'ONVIF_NO_CREDENTIALS':
      return `the camera refuses our user name or password: set them with "vigil-agent camera-credentials --camera ${r.key} --username USER" (password on standard input)`;
    case 'CAPTURE_NO_FRAME':
    case 'CAPTURE_CORRUPT':
    case 'SNAPSHOT_NOT_JPEG':
    case 'SNAPSHOT_CORRUPT':
    case 'SNAPSHOT_TOO_LARGE':
      return 'the camera answered but its picture was missing or broken: restart the camera and check its video settings (H.264 main stream, JPEG snapshots)';
    case 'DISK_FULL':
      return 'the data disk is full: see the disk check';
    case 'CAPTURE_ABORTED':
      return 'the check was interrupted: run vigil-agent doctor again';
    default:
      return `check that the camera${at} is powered and connected, then run vigil-agent doctor again`;
  }
}

/** One capture now; the original JPEG kept as <framesDir>/<key>.jpg. */
export async function freshFrame(
  cam: DoctorCamera,
  o: { framesDir: string; ffmpegPath: string; rtspTimeoutMs: number; signal?: AbortSignal | undefined },
): Promise<Finding> {
  const r = cam.record;
  const file = join(o.framesDir, `${r.key}.jpg`);
  const base = { camera: r.key, name: r.name, address: r.address };
  // A frame from an earlier doctor run must not pass for today's.
  await rm(file, { force: true });
  const spec = cam.spec;
  if (spec === null) {
    const why = !r.present ? 'not found by the latest network discoveries' : (lastError(r) ?? 'the camera gave no stream or snapshot address');
    const code = r.lastError?.code ?? (r.present ? 'NO_STREAM' : 'CAMERA_LOST');
    const todo = r.present ? captureAdvice(code, r) : `check that the camera${r.address ? ` last seen at ${r.address}` : ''} is powered and connected to this network`;
    return finding('frame', 'fail', `${describe(r)}: cannot be captured: ${why}`, todo, { ...base, ok: false, error: { code, message: why } });
  }
  const router = new CaptureRouter({
    mode: spec.capturePath,
    rtspUrl: spec.rtspUrl ?? undefined,
    snapshotUrl: spec.snapshotUrl ?? undefined,
    log: silentLogger(),
    // One failed RTSP try is enough to try the snapshot URI (where the camera has one).
    failuresBeforeFallback: 1,
  });
  const workDir = join(o.framesDir, `.work-${r.key}`);
  const req = {
    url: '',
    username: spec.username,
    password: spec.password,
    transport: spec.transport,
    workDir,
    timeoutMs: spec.captureTimeoutMs,
    ioTimeoutMs: o.rtspTimeoutMs,
    ffmpegPath: o.ffmpegPath,
    signal: o.signal,
  };
  const started = Date.now();
  const first = router.path;
  let rtspError: unknown = null;
  try {
    await mkdir(o.framesDir, { recursive: true });
    let res: FrameCaptureResult;
    try {
      res = await router.capture(req);
    } catch (err) {
      if (first !== 'rtsp' || router.path !== 'snapshot') throw err;
      rtspError = err;
      res = await router.capture(req);
    }
    await rename(res.files.original, file);
    const size = (await stat(file)).size;
    const data = { ...base, ok: true, path: file, bytes: size, capturedAt: started, captureMs: Math.round(res.elapsedMs), via: router.path };
    const fact = `${describe(r)}: fresh frame, ${formatBytes(size)} in ${(res.elapsedMs / 1000).toFixed(1)} s via ${router.path} → ${file}`;
    if (rtspError === null) return finding('frame', 'ok', fact, null, data);
    const msg = message(rtspError, spec.password);
    return finding('frame', 'warn', `${fact}; RTSP failed: ${msg}`, `the camera's video stream (RTSP) does not work, only its snapshots: ${captureAdvice(errorCode(rtspError) ?? 'CAPTURE_FAILED', r)}`, {
      ...data,
      rtspError: { code: errorCode(rtspError) ?? 'CAPTURE_FAILED', message: msg },
    });
  } catch (err) {
    const code = errorCode(err) ?? 'CAPTURE_FAILED';
    const msg = message(err, spec.password);
    return finding('frame', 'fail', `${describe(r)}: no picture after ${((Date.now() - started) / 1000).toFixed(1)} s: ${code}: ${msg}`, captureAdvice(code, r), {
      ...base,
      ok: false,
      error: { code, message: msg },
      ...(rtspError ? { rtspError: { code: errorCode(rtspError), message: message(rtspError, spec.password) } } : {}),
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

function message(err: unknown, password: string | undefined): string {
  return redactSecrets(err instanceof Error ? err.message : String(err), [password]);
}

/** Every camera's fresh frame, `DOCTOR_CAPTURE_CONCURRENCY` at a time, in the cameras' order. */
export async function freshFrames(cams: DoctorCamera[], o: Parameters<typeof freshFrame>[1]): Promise<Finding[]> {
  const out: Finding[] = new Array<Finding>(cams.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < cams.length) {
      const i = next++;
      out[i] = await freshFrame(cams[i]!, o);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DOCTOR_CAPTURE_CONCURRENCY, cams.length) }, lane));
  return out;
}
