import cron from 'node-cron';
import type { ClaimRequest, ClaimResponse, DeviceInfo } from '@vigil/protocol';
import type { Bus } from '../lib/bus.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { backoffDelay } from '../lib/backoff.js';
import { Waker } from '../lib/waker.js';
import { errorCode } from '../lib/errors.js';
import { CloudError, type CloudClient } from '../cloud/cloud-client.js';
import type { TokenVault } from './token-vault.js';

export type TokenState = 'none' | 'checking' | 'valid' | 'invalid';

/** How often a device without a valid token looks for one set by `vigil-agent claim|set-token`. */
export const TOKEN_POLL_MS = 5_000;
/** Longest wait between checks of a valid token; the cron schedule usually wakes it sooner. */
export const TOKEN_RECHECK_MS = 86_400_000;

export interface DeviceAuthOptions {
  vault: TokenVault;
  client: CloudClient;
  bus: Bus;
  clock: Clock;
  log: Logger;
  hardwareId: string;
  deviceName: string;
  claimCode?: string | undefined;
  /** node-cron expression for the periodic token check (hourly by default). */
  checkSchedule: string;
}

/**
 * The device token's life: claim with a one-time code when there is none, validate it at
 * start and every hour, and tell every uploader at once (through the bus) when it stops or
 * starts working. A token rejected by the cloud is not retried; the agent waits for a new one.
 */
export class DeviceAuth {
  #state: TokenState = 'none';
  #token: string | undefined;
  #rejected: string | undefined;
  #claimRejected = false;
  #reason = 'no token yet';
  #claimFailures = 0;
  readonly #waker: Waker;
  #device: DeviceInfo | undefined;

  constructor(private readonly o: DeviceAuthOptions) {
    this.#waker = new Waker(o.clock);
    o.bus.on('token:invalidated', (reason) => this.invalidate(reason));
  }

  /** The token requests carry; undefined until there is one. */
  readonly token = (): string | undefined => this.#token;

  get state(): TokenState {
    return this.#state;
  }

  /** Why the token is not valid (for logs, doctor and the status page). */
  get reason(): string {
    return this.#reason;
  }

  get device(): DeviceInfo | undefined {
    return this.#device;
  }

  async start(signal: AbortSignal): Promise<void> {
    const task = cron.schedule(this.o.checkSchedule, () => this.#waker.wake(), { noOverlap: true });
    try {
      while (!signal.aborted) {
        const wait = await this.step(signal);
        await this.#waker.wait(wait, signal);
      }
    } finally {
      await task.destroy();
    }
  }

  /** One pass of the token life cycle; returns how long to wait before the next. */
  private async step(signal: AbortSignal): Promise<number> {
    const stored = this.loadStored();
    if (stored && stored !== this.#rejected) {
      // A token we have not seen rejected: (re)validate it. Woken hourly by cron while valid.
      return this.check(stored, signal);
    }
    if (this.o.claimCode && !this.#claimRejected && !stored) return this.claim(this.o.claimCode, signal);
    if (this.#state !== 'invalid') this.setState('none', this.#reason);
    return TOKEN_POLL_MS;
  }

  private loadStored(): string | undefined {
    try {
      return this.o.vault.load();
    } catch (err) {
      this.o.log.error({ code: errorCode(err) }, 'stored device token is unreadable; the device needs a new claim');
      this.#reason = 'stored token unreadable';
      return undefined;
    }
  }

  private async check(token: string, signal: AbortSignal): Promise<number> {
    const wasValid = this.#state === 'valid' && this.#token === token;
    this.#token = token;
    try {
      this.#device = await this.o.client.call<DeviceInfo>('GET', '/v1/device', undefined, { signal });
      this.setState('valid', 'token accepted');
      if (!wasValid) this.o.bus.emit('token:refreshed');
      return TOKEN_RECHECK_MS;
    } catch (err) {
      if (err instanceof CloudError && err.kind === 'auth') {
        this.#rejected = token;
        this.invalidate(`token rejected by the cloud (${err.status ?? err.code})`);
        return TOKEN_POLL_MS;
      }
      // Cloud unreachable: keep using the token; the uploaders will learn if it is bad.
      if (this.#state !== 'valid') {
        this.setState('valid', 'token not yet confirmed: cloud unreachable');
        this.o.bus.emit('token:refreshed');
      }
      this.o.log.warn({ code: errorCode(err) }, 'token check could not reach the cloud');
      return backoffDelay(1);
    }
  }

  private async claim(code: string, signal: AbortSignal): Promise<number> {
    const body: ClaimRequest = { code, hardwareId: this.o.hardwareId, name: this.o.deviceName };
    try {
      const res = await this.o.client.call<ClaimResponse>('POST', '/v1/claim', body, { signal, auth: false });
      this.o.vault.save(res.token, this.o.clock.now());
      this.#claimFailures = 0;
      this.o.log.info({ deviceId: res.deviceId, site: res.site }, 'device claimed');
      return 0;
    } catch (err) {
      if (err instanceof CloudError && err.reachedCloud && err.kind !== 'retry' && err.kind !== 'rate_limited') {
        this.#claimRejected = true;
        this.setState('none', `claim code refused: ${err.bodyCode ?? err.status}`);
        this.o.log.error({ code: err.bodyCode, status: err.status }, 'claim code refused; waiting for a new code or token');
        return TOKEN_POLL_MS;
      }
      this.#claimFailures++;
      this.o.log.warn({ code: errorCode(err) }, 'claim failed; will retry');
      return err instanceof CloudError && err.retryAfterMs !== undefined ? err.retryAfterMs : backoffDelay(this.#claimFailures);
    }
  }

  private invalidate(reason: string): void {
    if (this.#state === 'invalid') return;
    this.setState('invalid', reason);
    this.o.log.error({ reason }, 'device token invalid: uploads paused until a new token is set');
    this.#waker.wake();
  }

  private setState(state: TokenState, reason: string): void {
    this.#state = state;
    this.#reason = reason;
  }
}
