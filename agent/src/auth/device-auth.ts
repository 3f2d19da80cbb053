import { createHash } from 'node:crypto';
import cron from 'node-cron';
import type { ClaimRequest, ClaimResponse, DeviceInfo } from '@vigil/protocol';
import type { Bus } from '../lib/bus.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { backoffDelay } from '../lib/backoff.js';
import { Waker } from '../lib/waker.js';
import { errorCode } from '../lib/errors.js';
import { CloudError, type CloudClient } from '../cloud/cloud-client.js';
import type { Kv } from '../store/kv.js';
import type { TokenVault } from './token-vault.js';

export type TokenState = 'none' | 'checking' | 'valid' | 'invalid';

/** Where the claim code being used came from: the config (VIGIL_CLAIM_CODE), the SD card, the status page's form. */
export type ClaimSource = 'none' | 'config' | 'card' | 'form';

/** The claim's progress, for logs, doctor and the status page. */
export interface ClaimView {
  source: ClaimSource;
  state: 'idle' | 'trying' | 'refused' | 'claimed';
  /** Why it was refused or is being retried, in the cloud's words when it said any. */
  reason: string | null;
  /** When the state last changed (epoch ms). */
  at: number | null;
}

/** How often a device without a valid token looks for one set by `vigil-agent claim|set-token`. */
export const TOKEN_POLL_MS = 5_000;
/** Longest wait between checks of a valid token; the cron schedule usually wakes it sooner. */
export const TOKEN_RECHECK_MS = 86_400_000;
/** The SHA-256 of the last claim code that gave this device its token (never the code itself). */
export const USED_CODE_KEY = 'claim_used_code';
/** After a failed erase of the card's used code, when it is tried again. */
export const CARD_ERASE_RETRY_MS = 60_000;

export interface DeviceAuthOptions {
  vault: TokenVault;
  kv: Kv;
  client: CloudClient;
  bus: Bus;
  clock: Clock;
  log: Logger;
  hardwareId: string;
  deviceName: string;
  /** The config's claim code: used only while the device has no working token. */
  claimCode?: string | undefined;
  /** The card's CLAIM_CODE as it is now (read on every pass: the erase removes it). */
  cardCode?: () => string | undefined;
  /** Removes the claim code from the card once the token it gave is stored. */
  eraseCardCode?: () => Promise<void>;
  /** node-cron expression for the periodic token check (hourly by default). */
  checkSchedule: string;
}

interface Candidate {
  code: string;
  source: Exclude<ClaimSource, 'none'>;
}

/** Case, spaces, dashes and look-alike letters do not change a code (as the cloud reads it). */
const codeHash = (code: string) =>
  createHash('sha256')
    .update(code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1'))
    .digest('hex');

/**
 * The device token's life: claim with a one-time code when there is none, validate it at
 * start and every hour, and tell every uploader at once (through the bus) when it stops or
 * starts working. A token rejected by the cloud is not retried; the agent waits for a new one.
 *
 * Claim codes come from the config, the SD card (vigil.txt) or the status page's form, the
 * latest first. A code from the card or the form is tried even while a token works (the
 * technician means this device to be claimed with it); the config's only without one. A code
 * that gave the token is remembered by hash and never tried again, and the card's copy is
 * erased once the token is stored. A refused code is tried again slowly (the cloud's answer
 * can change: a device removed from its old site may then move); a new code at once.
 */
export class DeviceAuth {
  #state: TokenState = 'none';
  #token: string | undefined;
  #rejected: string | undefined;
  #reason = 'no token yet';
  #formCode: string | undefined;
  #claim: ClaimView = { source: 'none', state: 'idle', reason: null, at: null };
  /** The code (by hash) that failed or was refused, and when it may be tried again. */
  #notBefore: { hash: string; until: number; tries: number } | undefined;
  #eraseAfter = 0;
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

  get claim(): ClaimView {
    return { ...this.#claim };
  }

  /** A code typed into the status page: tried at once, before the card's and the config's. */
  submitClaimCode(code: string): void {
    if (codeHash(code.trim()) === this.o.kv.get(USED_CODE_KEY)?.toString('utf8')) {
      this.setClaim('form', 'claimed', 'this code already gave this device its token');
      return;
    }
    this.#formCode = code.trim();
    // Typed again after a refusal: the person wants it tried now.
    this.#notBefore = undefined;
    this.setClaim('form', 'trying', null);
    this.#waker.wake();
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
    const usable = stored !== undefined && stored !== this.#rejected;
    await this.eraseSpentCardCode();
    let next = usable ? TOKEN_RECHECK_MS : TOKEN_POLL_MS;
    const candidate = this.candidate(usable);
    if (candidate) {
      const hash = codeHash(candidate.code);
      const now = this.o.clock.now();
      const held = this.#notBefore?.hash === hash ? this.#notBefore.until - now : 0;
      if (held > 0) next = Math.min(next, held);
      else {
        const retryInMs = await this.tryClaim(candidate, hash, signal);
        if (retryInMs === undefined) return 0;
        next = Math.min(next, retryInMs);
      }
    }
    // A token we have not seen rejected: (re)validate it. Woken hourly by cron while valid.
    if (usable) return Math.min(next, await this.check(stored, signal));
    if (this.#state !== 'invalid') this.setState('none', this.#reason);
    return next;
  }

  /** The newest code not yet spent: the form's, the card's, then (only without a token) the config's. */
  private candidate(haveToken: boolean): Candidate | undefined {
    const used = this.o.kv.get(USED_CODE_KEY)?.toString('utf8');
    const fresh = (code: string | undefined) => code !== undefined && code !== '' && codeHash(code) !== used;
    if (fresh(this.#formCode)) return { code: this.#formCode!, source: 'form' };
    const card = this.o.cardCode?.();
    if (fresh(card)) return { code: card!, source: 'card' };
    if (!haveToken && fresh(this.o.claimCode)) return { code: this.o.claimCode!, source: 'config' };
    return undefined;
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

  /** Claims with the code; undefined once claimed, else how long until it may be tried again. */
  private async tryClaim({ code, source }: Candidate, hash: string, signal: AbortSignal): Promise<number | undefined> {
    const body: ClaimRequest = { code, hardwareId: this.o.hardwareId, name: this.o.deviceName };
    this.setClaim(source, 'trying', this.#claim.source === source ? this.#claim.reason : null);
    try {
      const res = await this.o.client.call<ClaimResponse>('POST', '/v1/claim', body, { signal, auth: false });
      const now = this.o.clock.now();
      // The token and the spent code in one transaction: a power cut keeps both or neither.
      this.o.kv.transaction(() => {
        this.o.vault.save(res.token, now);
        this.o.kv.set(USED_CODE_KEY, Buffer.from(hash), now);
      });
      this.#notBefore = undefined;
      this.#rejected = undefined;
      if (source === 'form') this.#formCode = undefined;
      this.setClaim(source, 'claimed', `device ${res.deviceId} at site "${res.site}"`);
      this.o.log.info({ deviceId: res.deviceId, site: res.site, source }, 'device claimed');
      await this.eraseSpentCardCode();
      return undefined;
    } catch (err) {
      if (!(err instanceof CloudError) || signal.aborted) throw err;
      const tries = this.#notBefore?.hash === hash ? this.#notBefore.tries + 1 : 1;
      const refused = err.reachedCloud && (err.bodyCode?.startsWith('CLAIM_') === true || err.kind === 'permanent');
      const wait = (!refused && err.retryAfterMs) || backoffDelay(tries);
      this.#notBefore = { hash, until: this.o.clock.now() + wait, tries };
      if (refused) {
        const said = err.bodyCode ? `${err.bodyCode}: ${err.bodyMessage ?? ''}`.trim() : `HTTP ${err.status}`;
        this.setClaim(source, 'refused', `claim code refused: ${said}`);
        if (this.#state !== 'valid') this.setState(this.#state, `claim code refused: ${err.bodyCode ?? err.status}`);
        this.o.log.error({ code: err.bodyCode, status: err.status, source, retryInMs: wait }, 'claim code refused; waiting for a new code (this one is tried again later)');
      } else {
        this.setClaim(source, 'trying', `cloud not reached (${err.code}); trying again`);
        this.o.log.warn({ code: errorCode(err), source, retryInMs: wait }, 'claim failed; will retry');
      }
      return wait;
    }
  }

  /** Erases the card's code once it is spent (a failure, or a power cut before it, is retried). */
  private async eraseSpentCardCode(): Promise<void> {
    const card = this.o.cardCode?.();
    const used = this.o.kv.get(USED_CODE_KEY)?.toString('utf8');
    if (!card || !this.o.eraseCardCode || codeHash(card) !== used || this.o.clock.now() < this.#eraseAfter) return;
    try {
      await this.o.eraseCardCode();
      this.o.log.info('used claim code erased from the card');
    } catch (err) {
      this.#eraseAfter = this.o.clock.now() + CARD_ERASE_RETRY_MS;
      this.o.log.warn({ err: (err as Error).message }, 'could not erase the used claim code from the card; will try again (the cloud refuses it anyway)');
    }
  }

  private invalidate(reason: string): void {
    // An uploader that found no token at all: that is "not claimed yet", not a bad token
    if (this.#state === 'invalid' || this.#token === undefined) return;
    this.setState('invalid', reason);
    this.o.log.error({ reason }, 'device token invalid: uploads paused until a new token is set');
    this.#waker.wake();
  }

  private setState(state: TokenState, reason: string): void {
    this.#state = state;
    this.#reason = reason;
  }

  private setClaim(source: ClaimSource, state: ClaimView['state'], reason: string | null): void {
    this.#claim = { source, state, reason, at: this.o.clock.now() };
  }
}
