// What the status page shows, as one JSON-able object (GET /api/status gives it as it is): the
// facts `vigil-agent doctor` reports, read from the running agent instead of probed again.
// The device checks are the doctor's own findings (doctor/device-checks.ts); the token, the
// claim and the cameras come from the agent's parts; the thumbnails from thumbnails.ts.
//
// Built at most every STATUS_CACHE_MS however many pages refresh, and the NTP state (a child
// process) at most every CLOCK_CACHE_MS: the page must never cost the capture anything.
import type { CameraHealth, DeviceInfo } from '@vigil/protocol';
import type { AgentConfig } from '../config.js';
import { cardFinding, clockFinding, diskFinding, firmwareFinding, queueFindings, updateFinding } from '../doctor/device-checks.js';
import { finding, type Finding } from '../doctor/findings.js';
import type { CameraSnapshot } from '../health/checks.js';
import { readFirmwareInfo, type FirmwareInfo } from '../health/system-facts.js';
import type { Clock } from '../lib/clock.js';
import type { Kv } from '../store/kv.js';
import type { UploadQueue } from '../store/upload-queue.js';
import { readUpdateState } from '../update/updater.js';
import { AGENT_VERSION } from '../version.js';

export const STATUS_CACHE_MS = 2_000;
export const CLOCK_CACHE_MS = 30_000;

/** The claim's progress as DeviceAuth tells it (auth/device-auth.ts, ClaimView). */
export interface ClaimView {
  source: 'none' | 'card' | 'config' | 'form';
  state: 'idle' | 'trying' | 'refused' | 'claimed';
  reason: string | null;
  at: number | null;
}

/** What the page needs of DeviceAuth; `claim` and `submitClaimCode` are optional so an agent without the form still serves the page. */
export interface AuthView {
  readonly state: string;
  readonly reason: string;
  readonly device: DeviceInfo | undefined;
  readonly claim?: ClaimView;
  submitClaimCode?(code: string): void;
}

export interface StatusSources {
  config: AgentConfig;
  clock: Clock;
  hardwareId: string;
  /** vigil-XXXX: the device's mDNS name. */
  hostName: string;
  /** The name the device claims with (the cloud's name wins once claimed). */
  deviceName: string;
  auth: AuthView;
  queue: UploadQueue;
  kv: Kv;
  /** The capture workers as the supervision tree runs them (AgentTree.cameras()). */
  cameras: () => CameraSnapshot[];
  /** Cameras known but not captured, with why (AgentCameras.uncaptured()). */
  uncaptured: () => CameraHealth[];
  /** When each camera's latest thumbnail frame was captured (null: none yet). */
  thumbnailAt: (camera: string) => number | null;
  /** Seconds since boot. */
  uptimeS?: () => number;
}

export type CameraLevel = 'ok' | 'waiting' | 'failing' | 'stopped';

export interface CameraLine {
  camera: string;
  name: string;
  /** ok: captured within its allowance; waiting: no capture yet since the agent started. */
  level: CameraLevel;
  lastCaptureAt: number | null;
  lastError: string | null;
  capturesOk: number;
  failures: number;
  intervalMs: number | null;
  /** The thumbnail's frame time; null when there is no frame to show yet. */
  thumbnailAt: number | null;
}

export interface StatusView {
  /** Epoch ms when the facts were read. */
  at: number;
  device: { name: string; hostName: string; hardwareId: string; agentVersion: string; uptimeS: number | null };
  cloudUrl: string;
  auth: { state: string; reason: string; device: DeviceInfo | null; claim: (ClaimView & { advice: string | null }) | null; canClaim: boolean };
  /** firmware, update, clock, queue, dead_letters, disk: the doctor's findings. */
  checks: Finding[];
  /** token: the doctor's check, from the running agent's state. */
  token: Finding;
  cameras: CameraLine[];
}

/** What a technician can do about a refused claim code, by the cloud's error code. */
export const CLAIM_ADVICE: Record<string, string> = {
  CLAIM_CODE_EXPIRED: 'this claim code has expired; ask for a new one',
  CLAIM_CODE_USED: 'this claim code was already used; ask for a new one',
  CLAIM_CODE_UNKNOWN: 'no such claim code: check it against the dashboard (letters and digits), or ask for a new one',
  CLAIM_DEVICE_OTHER_SITE: 'this device belongs to another site: remove it there in the dashboard first, then use a new code',
};

export function claimAdvice(reason: string | null): string | null {
  const code = reason === null ? undefined : /\bCLAIM_[A-Z_]+\b/.exec(reason)?.[0];
  return code === undefined ? null : (CLAIM_ADVICE[code] ?? null);
}

/** The doctor's token check, from DeviceAuth's state instead of a request of its own. */
export function tokenFinding(auth: AuthView): Finding {
  const device = auth.device ?? null;
  const data = { state: auth.state, reason: auth.reason, device };
  const todo = 'enter a claim code from the Vigil dashboard below, or put CLAIM_CODE=... in vigil.txt on the SD card';
  switch (auth.state) {
    case 'valid':
      return finding('token', 'ok', device ? `accepted: device "${device.name}" at site "${device.site}"` : `valid (${auth.reason})`, null, data);
    case 'checking':
      return finding('token', 'skip', `being checked (${auth.reason})`, 'wait a few seconds', data);
    case 'invalid':
      return finding('token', 'fail', `no working token: ${auth.reason}; uploads are paused`, `${todo} (a device removed in the dashboard, or claimed again elsewhere, needs a new code)`, data);
    default:
      return finding('token', 'fail', `no device token: ${auth.reason}`, todo, data);
  }
}

/** A camera's level, as the health checks judge it (checks.ts cameraState), with "waiting" for no capture yet. */
export function cameraLevel(c: CameraSnapshot, failingIntervals: number, monotonicNow: number): CameraLevel {
  if (!c.alive) return 'stopped';
  const allowed = failingIntervals * c.intervalMs + c.captureTimeoutMs;
  if (c.lastSuccessAt === null) return 'waiting';
  return monotonicNow - c.lastSuccessAt > allowed ? 'failing' : 'ok';
}

export class StatusReader {
  #firmware: Promise<FirmwareInfo> | undefined;
  #clock: { at: number; finding: Promise<Finding> } | undefined;
  #cached: { at: number; view: Promise<StatusView> } | undefined;

  constructor(private readonly s: StatusSources) {}

  /** The status, at most STATUS_CACHE_MS old; concurrent callers share one read. */
  read(): Promise<StatusView> {
    const now = this.s.clock.monotonic();
    if (this.#cached && now - this.#cached.at < STATUS_CACHE_MS) return this.#cached.view;
    const view = this.build();
    this.#cached = { at: now, view };
    view.catch(() => {
      if (this.#cached?.view === view) this.#cached = undefined;
    });
    return view;
  }

  /** Forget the cached status (after a claim code was entered, the next page shows it at once). */
  invalidate(): void {
    this.#cached = undefined;
  }

  private firmware(): Promise<FirmwareInfo> {
    // Read once, like the agent: it changes only with a reboot.
    this.#firmware ??= readFirmwareInfo(this.s.config.system);
    return this.#firmware;
  }

  private clockCheck(fw: FirmwareInfo): Promise<Finding> {
    const now = this.s.clock.monotonic();
    if (!this.#clock || now - this.#clock.at >= CLOCK_CACHE_MS) this.#clock = { at: now, finding: clockFinding(this.s.config, fw, this.s.clock.now()) };
    return this.#clock.finding;
  }

  private async build(): Promise<StatusView> {
    const { config, clock, auth } = this.s;
    const fw = await this.firmware();
    const now = clock.now();
    const [clockCheck, disk] = await Promise.all([this.clockCheck(fw), diskFinding(config)]);
    const checks = [cardFinding(config), firmwareFinding(config, fw), updateFinding(readUpdateState(this.s.kv), now), clockCheck, ...queueFindings(config, this.s.queue, now), disk];
    const mono = clock.monotonic();
    const captured = this.s.cameras().map(
      (c): CameraLine => ({
        camera: c.id,
        name: c.name,
        level: cameraLevel(c, config.health.cameraFailingIntervals, mono),
        lastCaptureAt: c.lastCaptureAt,
        lastError: c.lastError,
        capturesOk: c.capturesOk,
        failures: c.failures,
        intervalMs: c.intervalMs,
        thumbnailAt: this.s.thumbnailAt(c.id),
      }),
    );
    const known = new Set(captured.map((c) => c.camera));
    const uncaptured = this.s
      .uncaptured()
      .filter((c) => !known.has(c.camera))
      .map(
        (c): CameraLine => ({
          camera: c.camera,
          name: c.name,
          level: 'stopped',
          lastCaptureAt: c.lastCaptureAt,
          lastError: c.lastError,
          capturesOk: c.capturesOk,
          failures: c.failures,
          intervalMs: null,
          thumbnailAt: this.s.thumbnailAt(c.camera),
        }),
      );
    const claim = auth.claim ?? null;
    return {
      at: now,
      device: {
        name: auth.device?.name ?? this.s.deviceName,
        hostName: this.s.hostName,
        hardwareId: this.s.hardwareId,
        agentVersion: AGENT_VERSION,
        uptimeS: this.s.uptimeS?.() ?? null,
      },
      cloudUrl: config.cloudUrl,
      auth: {
        state: auth.state,
        reason: auth.reason,
        device: auth.device ?? null,
        claim: claim && { ...claim, advice: claim.state === 'refused' ? claimAdvice(claim.reason) : null },
        canClaim: auth.state !== 'valid' && typeof auth.submitClaimCode === 'function',
      },
      checks,
      token: tokenFinding(auth),
      cameras: [...captured, ...uncaptured],
    };
  }
}
