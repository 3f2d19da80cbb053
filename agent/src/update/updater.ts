// The Updater (DESIGN.md, "OTA"). Outside a trial it asks the cloud for this device's target
// firmware (a conditional request: 304 while nothing changed); when it names another version
// it downloads the bundle (resumable), has its signature checked before anything is written,
// installs it into the inactive slot and reboots into a one-shot trial. In the trial boot it
// commits only after product-level health — the agent up, a frame captured, an upload
// acknowledged by the cloud — within a time limit; otherwise it reboots and the Pi firmware,
// whose tryboot flag is one-shot, brings the old slot back. A crash, watchdog reset or power
// cut during the trial does the same. Every step and the outcome go to the cloud.
//
// Its state lives in the agent's database on /data, so it survives the reboots it causes:
//   installing → (reboot) trial → committed | reverted
// An install interrupted by a power cut is retried; a release that was reverted or failed is
// not tried again until the cloud names another one.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FirmwareStatusRequest, FirmwareTarget, UpdateState } from '@vigil/protocol';
import { CloudError, type CloudClient } from '../cloud/cloud-client.js';
import type { Clock } from '../lib/clock.js';
import { errorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { Waker } from '../lib/waker.js';
import type { Kv } from '../store/kv.js';
import { download } from './download.js';
import type { SlotInstaller } from './installer.js';

const STATE_KEY = 'update';
/** How often the trial boot looks at the health gate. */
export const TRIAL_CHECK_MS = 5_000;

export interface UpdaterOptions {
  client: CloudClient;
  installer: SlotInstaller;
  kv: Kv;
  clock: Clock;
  log: Logger;
  /** Where bundles are downloaded (on /data). */
  dir: string;
  pollMs: number;
  maxBundleBytes: number;
  /** A trial boot that is not healthy this long after boot is reverted. */
  trialTimeoutMs: number;
  /** The firmware that runs now. */
  firmware: () => { version: string | null; trial: boolean };
  /** Seconds since boot. */
  uptimeS: () => number;
  /** Product-level health of this boot: a frame captured, an upload acknowledged. */
  health: () => { captured: boolean; uploaded: boolean };
  /**
   * Reboots; `tryboot` asks the Pi firmware for the one-shot trial of the other slot. Resolves
   * once the reboot is under way (the agent then gets SIGTERM); rejects when it cannot start.
   */
  reboot: (tryboot: boolean, reason: string) => Promise<void> | void;
  random?: () => number;
}

/** The latest update as stored on /data (also for `vigil-agent status`), or null. */
export function readUpdateState(kv: Kv): Stored | null {
  const raw = kv.get(STATE_KEY);
  return raw ? (JSON.parse(raw.toString('utf8')) as Stored) : null;
}

export interface Stored {
  releaseId: string;
  version: string;
  deploymentId: string | null;
  state: UpdateState;
  reason: string | null;
  at: number;
  /** The cloud has not acknowledged this state yet. */
  unreported: boolean;
}

export class Updater {
  readonly #waker: Waker;
  #etag: string | null = null;
  /** The last target the cloud sent (a 304 means it still holds). */
  #target: FirmwareTarget | null = null;

  constructor(private readonly o: UpdaterOptions) {
    this.#waker = new Waker(o.clock);
  }

  /** The latest update and where it stands, or null. */
  status(): Stored | null {
    return readUpdateState(this.o.kv);
  }

  async start(signal: AbortSignal): Promise<void> {
    const fw = this.o.firmware();
    const stored = this.status();
    if (fw.trial) {
      await this.trial(stored, signal);
      return;
    }
    if (stored?.state === 'trial') {
      if (fw.version === stored.version) this.record(stored, 'committed', null); // committed, then cut off before it said so
      // Back on the old slot before the trial committed: crash, watchdog, power cut or our own revert
      else this.record(stored, 'reverted', stored.reason ?? `the trial boot of ${stored.version} did not commit; the device is back on ${fw.version ?? 'the previous slot'}`);
    }
    await this.run(signal);
  }

  /** The ordinary loop: report what is unreported, look for an update, wait. */
  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.flush(signal);
      await this.poll(signal);
      const jitter = 0.9 + 0.2 * (this.o.random ?? Math.random)();
      await this.#waker.wait(this.o.pollMs * jitter, signal);
    }
  }

  /** Look for an update now. */
  wake(): void {
    this.#waker.wake();
  }

  /** One look at the target, and the update if there is one. */
  async poll(signal: AbortSignal): Promise<void> {
    const { client, log } = this.o;
    try {
      const res = await client.getObject('/v1/firmware/target', this.#etag ? { 'if-none-match': this.#etag } : {}, signal);
      const chunks: Buffer[] = [];
      for await (const c of res.body) chunks.push(c);
      this.#target = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FirmwareTarget;
      const etag = res.headers.etag;
      this.#etag = (Array.isArray(etag) ? etag[0] : etag) ?? null;
    } catch (err) {
      // 304: the target we have is still the one (and an unfinished update of it is tried again)
      if (!(err instanceof CloudError && err.status === 304)) {
        if (!signal.aborted) log.debug({ err: (err as Error).message }, 'firmware target not available');
        return;
      }
    }
    const target = this.#target;
    if (!target) return;
    const release = target.release;
    const running = this.o.firmware().version;
    if (!release || release.version === running) return;
    const stored = this.status();
    if (stored && stored.releaseId === release.id && (stored.state === 'reverted' || stored.state === 'failed')) return;
    await this.update(release, target.deploymentId, signal);
  }

  private async update(release: NonNullable<FirmwareTarget['release']>, deploymentId: string | null, signal: AbortSignal): Promise<void> {
    const { installer, log } = this.o;
    const base = { releaseId: release.id, version: release.version, deploymentId };
    const bundle = join(this.o.dir, `${release.id}.raucb`);
    this.record(base, 'downloading', null);
    await this.flush(signal);
    try {
      await mkdir(this.o.dir, { recursive: true });
      await download(this.o.client, { url: release.url, dest: bundle, bytes: release.bytes, sha256: release.sha256, maxBytes: this.o.maxBundleBytes, signal }, log);
      // The signature, before anything is written to a slot
      const info = await installer.inspect(bundle);
      if (info.version !== release.version) throw Object.assign(new Error(`the bundle says version ${info.version}, the release ${release.version}`), { code: 'BUNDLE_INVALID' });
      this.record(base, 'installing', null);
      await this.flush(signal);
      await installer.install(bundle);
    } catch (err) {
      if (signal.aborted) return;
      const code = errorCode(err) ?? 'UPDATE_FAILED';
      const message = `${code}: ${(err as Error).message}`;
      // A bad bundle is final for this release; a dropped download or a failed write is tried again
      if (code === 'BUNDLE_INVALID' || code === 'DOWNLOAD_MISMATCH' || code === 'DOWNLOAD_REFUSED') {
        await rm(bundle, { force: true });
        this.record(base, 'failed', message);
      } else {
        log.warn({ err: message }, 'update not finished; it is tried again at the next poll');
      }
      await this.flush(signal);
      return;
    }
    await rm(bundle, { force: true });
    this.record(base, 'trial', null);
    await this.flush(signal);
    log.info({ version: release.version }, 'update installed; rebooting into the trial');
    try {
      await this.o.reboot(true, `update to ${release.version}`);
    } catch (err) {
      // The slot is written and armed, but the device did not go into the trial: final for this
      // release (a device whose reboot is broken needs a person, not the same update again)
      this.record(base, 'failed', `${errorCode(err) ?? 'REBOOT_FAILED'}: ${(err as Error).message}`);
      await this.flush(signal);
      return;
    }
    // Going down: nothing more from this run (the next boot is the trial)
    await untilAborted(signal);
  }

  /** A trial boot: commit once the product works, revert when the time limit passes first. */
  private async trial(stored: Stored | null, signal: AbortSignal): Promise<void> {
    const { log } = this.o;
    const fw = this.o.firmware();
    const base = stored ?? { releaseId: 'unknown', version: fw.version ?? 'unknown', deploymentId: null };
    while (!signal.aborted) {
      const h = this.o.health();
      if (h.captured && h.uploaded) {
        await this.o.installer.markGood();
        this.record(base, 'committed', null);
        log.info({ version: fw.version }, 'trial boot healthy: the new slot is committed');
        await this.flush(signal);
        // Committed: from now on an ordinary running system
        return this.run(signal);
      }
      if (this.o.uptimeS() * 1000 >= this.o.trialTimeoutMs) {
        const missing = [h.captured ? null : 'no frame captured', h.uploaded ? null : 'no upload acknowledged'].filter(Boolean).join(', ');
        const reason = `trial of ${base.version} not healthy within ${Math.round(this.o.trialTimeoutMs / 1000)} s of boot: ${missing}`;
        // Recorded as 'trial' with the reason: the old slot's first start reports it as reverted
        this.record(base, 'trial', reason);
        log.error({ reason }, 'trial boot failed; rebooting into the previous slot');
        await this.flush(signal);
        try {
          await this.o.reboot(false, reason);
        } catch (err) {
          // The watchdog keeper ends a trial boot that does not go down by itself
          log.error({ err: (err as Error).message }, 'reboot failed; the watchdog resets the board');
        }
        await untilAborted(signal);
        return;
      }
      await this.o.clock.sleep(TRIAL_CHECK_MS, signal);
    }
  }

  /** For the heartbeat: the latest update and where it stands, without bookkeeping. */
  heartbeatView(): { releaseId: string; version: string; state: UpdateState; reason: string | null; at: number } | null {
    const s = this.status();
    return s ? { releaseId: s.releaseId, version: s.version, state: s.state, reason: s.reason, at: s.at } : null;
  }

  private record(base: Pick<Stored, 'releaseId' | 'version' | 'deploymentId'>, state: UpdateState, reason: string | null): void {
    const s: Stored = { ...base, state, reason, at: this.o.clock.now(), unreported: true };
    this.o.kv.set(STATE_KEY, Buffer.from(JSON.stringify(s)), s.at);
    this.o.log.info({ version: s.version, state, reason }, `update ${state}`);
  }

  /** Sends the recorded state to the cloud if it has not heard it; kept until it has. */
  private async flush(signal: AbortSignal): Promise<void> {
    const s = this.status();
    if (!s?.unreported) return;
    const body: FirmwareStatusRequest = { deploymentId: s.deploymentId, releaseId: s.releaseId, version: s.version, state: s.state, reason: s.reason, at: s.at };
    try {
      await this.o.client.call('POST', '/v1/firmware/status', body, { signal });
    } catch (err) {
      if (!(err instanceof CloudError) || err.kind !== 'permanent') return;
      this.o.log.warn({ err: err.message }, 'the cloud refused the update status; not sent again');
    }
    if (this.status()?.at === s.at) this.o.kv.set(STATE_KEY, Buffer.from(JSON.stringify({ ...s, unreported: false })), this.o.clock.now());
  }
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
