// One ONVIF camera, reached at its device service URL (XAddr): what it is (maker, model,
// firmware, serial, MAC) and where its pictures are (RTSP stream URI over TCP, snapshot URI).
//
// Authentication is a WS-Security UsernameToken, PasswordDigest first, PasswordText if the
// camera refuses the digest (and the config allows it). The digest carries a Created time that
// the camera checks against its own clock, so we measure the camera's clock with the
// unauthenticated GetSystemDateAndTime and stamp tokens with *its* time: a camera ten minutes
// off still lets us in. The measurement is tied to our monotonic clock (an NTP step on the Pi
// does not spoil it) and is taken again after an auth failure and after a reboot.
//
// Some cameras want HTTP authentication on the SOAP endpoint as well as (or instead of) the
// UsernameToken: a 401 with a Digest challenge is answered (capture/http-auth.ts), and the
// challenge is reused for the next requests (nc counts up) until the camera sends a new one.
import type { Dispatcher } from 'undici';
import type { CameraCredentials } from '../cameras/types.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { OnvifError, isOnvifError, type OnvifErrorCode } from './onvif-errors.js';
import {
  chooseProfile,
  isAuthFault,
  parseDeviceInformation,
  parseMediaUri,
  parseMediaXAddr,
  parseNetworkInterfaces,
  parseProfiles,
  parseSoap,
  parseSystemDateAndTime,
  primaryMac,
  type DeviceInformation,
  type MediaProfile,
  type NetworkInterface,
} from './onvif-parse.js';
import { envelope, postSoap, type AuthMode, type HttpAnswer } from './onvif-soap.js';
import { AuthState, authorization, parseChallenges, type Challenge } from '../capture/http-auth.js';
import type { XmlElement } from './xml.js';

export const ONVIF_CALL_TIMEOUT_MS = 5_000;
/** A clock measurement older than this is taken again before the next authenticated call. */
export const CLOCK_MAX_AGE_MS = 3_600_000;

const DEVICE = 'http://www.onvif.org/ver10/device/wsdl';
const MEDIA = 'http://www.onvif.org/ver10/media/wsdl';

export interface OnvifDeviceOptions {
  xaddr: string;
  credentials?: CameraCredentials | undefined;
  clock: Clock;
  /** Every call, connect to last byte. */
  timeoutMs?: number;
  /** Fall back to PasswordText when the digest is refused (the password then crosses the LAN in clear). */
  passwordText?: boolean;
  dispatcher?: Dispatcher | undefined;
  log?: Logger | undefined;
}

/** Everything discovery needs to know about a camera. */
export interface OnvifDescription {
  xaddr: string;
  manufacturer: string | null;
  model: string | null;
  firmware: string | null;
  serial: string | null;
  hardwareId: string | null;
  mac: string | null;
  profile: MediaProfile;
  /** RTSP URI (RTP over RTSP, i.e. TCP), credentials removed. */
  streamUri: string | null;
  snapshotUri: string | null;
  /** Camera clock minus ours, ms. */
  clockOffsetMs: number;
  authMode: AuthMode | null;
}

interface ClockRef {
  /** The camera's time at `mono` (epoch ms). */
  camera: number;
  mono: number;
  offsetMs: number;
}

export class OnvifDevice {
  #xaddr: string;
  #credentials: CameraCredentials | undefined;
  #mode: AuthMode = 'digest';
  #clockRef: ClockRef | null = null;
  /** The camera's last HTTP auth challenge (Digest, or Basic when text passwords are allowed). */
  #challenge: Challenge[] | null = null;
  readonly #httpAuth = new AuthState();
  readonly #timeoutMs: number;
  /** HTTP requests sent (tests and the bench count them). */
  requests = 0;

  constructor(private readonly o: OnvifDeviceOptions) {
    this.#xaddr = o.xaddr;
    this.#credentials = o.credentials;
    this.#timeoutMs = o.timeoutMs ?? ONVIF_CALL_TIMEOUT_MS;
  }

  get xaddr(): string {
    return this.#xaddr;
  }

  /** The camera moved: same device, new address (its clock is measured again). */
  setXAddr(xaddr: string): void {
    if (xaddr === this.#xaddr) return;
    this.#xaddr = xaddr;
    this.#clockRef = null;
  }

  setCredentials(c: CameraCredentials | undefined): void {
    if (c?.username === this.#credentials?.username && c?.password === this.#credentials?.password) return;
    this.#credentials = c;
    this.#mode = 'digest';
    this.#challenge = null;
  }

  /** Forget the clock measurement (the camera rebooted: its clock may have been reset). */
  invalidateClock(): void {
    this.#clockRef = null;
  }

  /** Camera clock minus ours (ms), or null before the first measurement. */
  get clockOffsetMs(): number | null {
    return this.#clockRef?.offsetMs ?? null;
  }

  get authMode(): AuthMode {
    return this.#mode;
  }

  /** GetSystemDateAndTime: unauthenticated as the spec says, authenticated for cameras that insist. */
  async measureClock(signal?: AbortSignal): Promise<number> {
    const action = `${DEVICE}/GetSystemDateAndTime`;
    const body = '<tds:GetSystemDateAndTime/>';
    const t0 = this.o.clock.monotonic();
    let answer: XmlElement;
    try {
      answer = await this.send(this.#xaddr, action, body, null, signal);
    } catch (err) {
      if (!isOnvifError(err, 'ONVIF_AUTH_FAILED') || !this.#credentials) throw err;
      // Authenticated with our own clock: works when the two clocks agree well enough.
      answer = await this.send(this.#xaddr, action, body, this.#mode, signal);
    }
    const mid = (t0 + this.o.clock.monotonic()) / 2;
    const camera = parseSystemDateAndTime(answer);
    const now = this.o.clock.now() - (this.o.clock.monotonic() - mid);
    this.#clockRef = { camera, mono: mid, offsetMs: camera - now };
    return this.#clockRef.offsetMs;
  }

  async getDeviceInformation(signal?: AbortSignal): Promise<DeviceInformation> {
    return parseDeviceInformation(await this.call(this.#xaddr, `${DEVICE}/GetDeviceInformation`, '<tds:GetDeviceInformation/>', signal));
  }

  async getNetworkInterfaces(signal?: AbortSignal): Promise<NetworkInterface[]> {
    return parseNetworkInterfaces(await this.call(this.#xaddr, `${DEVICE}/GetNetworkInterfaces`, '<tds:GetNetworkInterfaces/>', signal));
  }

  /** The Media service URL: from GetCapabilities, on the address we reached the camera at. */
  async getMediaXAddr(signal?: AbortSignal): Promise<string> {
    const body = await this.call(this.#xaddr, `${DEVICE}/GetCapabilities`, '<tds:GetCapabilities><tds:Category>Media</tds:Category></tds:GetCapabilities>', signal);
    const media = parseMediaXAddr(body);
    return media ? onDeviceHost(media, this.#xaddr) : this.#xaddr;
  }

  async getProfiles(mediaXAddr: string, signal?: AbortSignal): Promise<MediaProfile[]> {
    return parseProfiles(await this.call(mediaXAddr, `${MEDIA}/GetProfiles`, '<trt:GetProfiles/>', signal));
  }

  /** RTSP URI of a profile: RTP-Unicast over RTSP (interleaved in the TCP connection). */
  async getStreamUri(mediaXAddr: string, profileToken: string, signal?: AbortSignal): Promise<string> {
    const body =
      '<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>' +
      `<trt:ProfileToken>${escapeToken(profileToken)}</trt:ProfileToken></trt:GetStreamUri>`;
    return parseMediaUri(await this.call(mediaXAddr, `${MEDIA}/GetStreamUri`, body, signal), 'GetStreamUriResponse');
  }

  async getSnapshotUri(mediaXAddr: string, profileToken: string, signal?: AbortSignal): Promise<string> {
    const body = `<trt:GetSnapshotUri><trt:ProfileToken>${escapeToken(profileToken)}</trt:ProfileToken></trt:GetSnapshotUri>`;
    return parseMediaUri(await this.call(mediaXAddr, `${MEDIA}/GetSnapshotUri`, body, signal), 'GetSnapshotUriResponse');
  }

  /**
   * Everything about the camera, in order: clock, device information (the first authenticated
   * call: a wrong password ends it here), MAC, media service, profiles, stream and snapshot URIs.
   * The MAC, the stream URI and the snapshot URI are optional answers; no profile, or neither
   * URI, is ONVIF_NO_MEDIA.
   */
  async describe(signal?: AbortSignal): Promise<OnvifDescription> {
    if (!this.#clockRef || this.o.clock.monotonic() - this.#clockRef.mono > CLOCK_MAX_AGE_MS) await this.measureClock(signal);
    const info = await this.getDeviceInformation(signal);
    const mac = await optional(() => this.getNetworkInterfaces(signal).then(primaryMac), null);
    const media = await optional(() => this.getMediaXAddr(signal), this.#xaddr);
    const profiles = await this.getProfiles(media, signal);
    const profile = chooseProfile(profiles);
    if (!profile) throw new OnvifError('ONVIF_NO_MEDIA', `${this.#xaddr}: the camera has no media profile`);
    const streamUri = await optional(() => this.getStreamUri(media, profile.token, signal), null);
    const snapshotUri = await optional(() => this.getSnapshotUri(media, profile.token, signal), null);
    if (!streamUri && !snapshotUri) throw new OnvifError('ONVIF_NO_MEDIA', `${this.#xaddr}: profile ${profile.token} has neither a stream nor a snapshot URI`);
    return {
      xaddr: this.#xaddr,
      manufacturer: info.manufacturer,
      model: info.model,
      firmware: info.firmwareVersion,
      serial: info.serialNumber,
      hardwareId: info.hardwareId,
      mac,
      profile,
      streamUri: streamUri && withoutCredentials(streamUri),
      snapshotUri: snapshotUri && withoutCredentials(snapshotUri),
      clockOffsetMs: this.#clockRef?.offsetMs ?? 0,
      authMode: this.#credentials ? this.#mode : null,
    };
  }

  /**
   * An authenticated call. On an auth failure: measure the camera's clock again and retry, then
   * try PasswordText (when allowed); a mode that works is kept for the next calls. At most four
   * requests, then ONVIF_AUTH_FAILED — never a loop.
   */
  private async call(url: string, action: string, body: string, signal?: AbortSignal): Promise<XmlElement> {
    if (!this.#credentials) {
      try {
        return await this.send(url, action, body, null, signal);
      } catch (err) {
        if (isOnvifError(err, 'ONVIF_AUTH_FAILED')) throw new OnvifError('ONVIF_NO_CREDENTIALS', `${url}: the camera asks for credentials and none are set for it`, { cause: err });
        throw err;
      }
    }
    if (!this.#clockRef) await this.measureClock(signal);
    try {
      return await this.send(url, action, body, this.#mode, signal);
    } catch (err) {
      if (!isOnvifError(err, 'ONVIF_AUTH_FAILED')) throw err;
      this.o.log?.debug({ xaddr: this.#xaddr, mode: this.#mode, offsetMs: this.#clockRef?.offsetMs }, 'ONVIF auth refused: measuring the camera clock again');
    }
    await this.measureClock(signal);
    const modes: AuthMode[] = [this.#mode];
    const other: AuthMode = this.#mode === 'digest' ? 'text' : 'digest';
    if (other === 'digest' || this.o.passwordText !== false) modes.push(other);
    let last: unknown;
    for (const mode of modes) {
      try {
        const answer = await this.send(url, action, body, mode, signal);
        if (mode !== this.#mode) this.o.log?.info({ xaddr: this.#xaddr, mode }, 'ONVIF auth works in another mode');
        this.#mode = mode;
        return answer;
      } catch (err) {
        if (!isOnvifError(err, 'ONVIF_AUTH_FAILED')) throw err;
        last = err;
      }
    }
    throw new OnvifError('ONVIF_AUTH_FAILED', `${url}: the camera refused user "${this.#credentials.username}" (${modes.join(' and ')})`, { cause: last });
  }

  /** One request; a SOAP fault or an HTTP error becomes an OnvifError. */
  private async send(url: string, action: string, body: string, mode: AuthMode | null, signal?: AbortSignal): Promise<XmlElement> {
    const name = action.slice(action.lastIndexOf('/') + 1);
    const token = mode && this.#credentials ? { credentials: this.#credentials, mode, created: this.cameraNow() } : undefined;
    const xml = envelope(body, token);
    let res = await this.post(url, action, xml, this.httpAuthorization(url, this.#challenge), signal);
    if (res.status === 401) {
      // A fresh challenge (the first, or a new nonce): answered once.
      const challenge = this.challengeOf(res);
      const authz = challenge && this.httpAuthorization(url, challenge);
      if (authz) {
        this.#challenge = challenge;
        res = await this.post(url, action, xml, authz, signal);
      }
    }
    if (res.status === 401) throw new OnvifError('ONVIF_AUTH_FAILED', `${name}: HTTP 401`);
    let answer;
    try {
      answer = parseSoap(res.text, name);
    } catch (err) {
      // Not SOAP: the status says more than the body (an HTML error page).
      if (res.status >= 400) throw new OnvifError(res.status >= 500 ? 'ONVIF_HTTP_5XX' : 'ONVIF_HTTP_4XX', `${name}: HTTP ${res.status}`, { cause: err });
      throw err;
    }
    if (answer.fault) {
      const code: OnvifErrorCode = isAuthFault(answer.fault) ? 'ONVIF_AUTH_FAILED' : 'ONVIF_FAULT';
      throw new OnvifError(code, `${name}: SOAP fault ${answer.fault.codes.join('/')}${answer.fault.reason ? `: ${answer.fault.reason}` : ''}`);
    }
    if (res.status >= 300) throw new OnvifError(res.status >= 500 ? 'ONVIF_HTTP_5XX' : 'ONVIF_HTTP_4XX', `${name}: HTTP ${res.status}`);
    return answer.body;
  }

  private post(url: string, action: string, xml: string, authz: string | undefined, signal: AbortSignal | undefined): Promise<HttpAnswer> {
    this.requests++;
    return postSoap(url, action, xml, { timeoutMs: this.#timeoutMs, signal, dispatcher: this.o.dispatcher, ...(authz ? { headers: { authorization: authz } } : {}) });
  }

  /** The challenges of a 401 we can answer: Digest, and Basic only where text passwords are allowed. */
  private challengeOf(res: HttpAnswer): Challenge[] | null {
    const h = res.headers['www-authenticate'];
    const all = parseChallenges(Array.isArray(h) ? h.join(', ') : (h ?? ''));
    const usable = all.filter((c) => c.scheme === 'digest' || (c.scheme === 'basic' && this.o.passwordText !== false));
    return usable.length ? usable : null;
  }

  private httpAuthorization(url: string, challenge: Challenge[] | null): string | undefined {
    if (!challenge || !this.#credentials) return undefined;
    const u = new URL(url);
    return authorization(challenge, { method: 'POST', uri: `${u.pathname}${u.search}`, ...this.#credentials }, this.#httpAuth);
  }

  /** The camera's clock now, from the last measurement and our monotonic clock. */
  private cameraNow(): number {
    const ref = this.#clockRef;
    if (!ref) return this.o.clock.now();
    return ref.camera + (this.o.clock.monotonic() - ref.mono);
  }
}

/** An optional answer: a fault or an odd answer gives `fallback`; a dead or slow camera still fails. */
async function optional<T>(fn: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isOnvifError(err) && (err.code === 'ONVIF_FAULT' || err.code === 'ONVIF_BAD_RESPONSE' || err.code === 'ONVIF_HTTP_4XX')) return fallback;
    throw err;
  }
}

function escapeToken(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A service URL moved onto the host we reached the device at: cameras behind NAT, or whose
 * network settings changed, report addresses we cannot reach. The path is kept.
 */
export function onDeviceHost(serviceUrl: string, deviceXAddr: string): string {
  try {
    const s = new URL(serviceUrl);
    const d = new URL(deviceXAddr);
    if (s.hostname === d.hostname) return s.href;
    return new URL(`${s.pathname}${s.search}`, d.origin).href;
  } catch {
    return deviceXAddr;
  }
}

/** Stream and snapshot URIs are stored without the credentials some cameras put in them. */
export function withoutCredentials(uri: string): string {
  try {
    const u = new URL(uri);
    if (!u.username && !u.password) return uri;
    u.username = '';
    u.password = '';
    return u.href;
  } catch {
    return uri;
  }
}
