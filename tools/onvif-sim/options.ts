// The simulator's options: defaults, validation, and the command line that spells them.
// Defaults describe a believable camera whose identity trips careless clients: a serial with
// leading zeros and a numeric-looking firmware version (agsh's `onvif` turns "2.40" into 2.4
// and "000123456" into 123456).
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';

export type SnapshotMode = 'jpeg' | 'html' | 'none';

export interface OnvifSimOptions {
  /** Address the HTTP server binds (default 127.0.0.1). 0.0.0.0 serves every address. */
  bind?: string;
  /** HTTP port, 0 = any free one (default 0). */
  port?: number;
  /**
   * Host written into XAddrs and URIs. Default: the bind address; with a wildcard bind, the
   * address the request came to (HTTP) or the first non-loopback IPv4 address (discovery).
   */
  advertiseAddress?: string;
  /** Enables WS-Discovery: joins 239.255.255.250 on the interface with this address. */
  discoveryIfaceAddress?: string;
  /** UDP port for WS-Discovery (default 3702; 0 = any free one, for loopback tests). */
  discoveryPort?: number;
  name?: string;
  manufacturer?: string;
  model?: string;
  firmware?: string;
  serial?: string;
  hardwareId?: string;
  /** MAC address (default derived from the serial). */
  mac?: string;
  hostname?: string;
  /** Location scope (onvif://www.onvif.org/location/…). */
  location?: string;
  username?: string;
  password?: string;
  /** Accept WS-UsernameToken PasswordText too (default: digest only). */
  passwordText?: boolean;
  /** The camera's clock is this many seconds off (a camera whose clock reset). */
  clockOffsetS?: number;
  /** Freshness window for the token's Created, on the camera's own clock (default ±300 s). */
  authWindowS?: number;
  /** HTTP status of a ter:NotAuthorized fault (default 400, as the ONVIF core spec says). */
  authFaultStatus?: 400 | 401;
  /** Stream URI of the main profile (default rtsp://<host>:554/Streaming/Channels/101). */
  rtspUrl?: string;
  /** Stream URI of the second profile (default: the main one's). */
  subRtspUrl?: string;
  /** 1 or 2 media profiles (default 2: main stream and sub stream). */
  profiles?: 1 | 2;
  snapshot?: SnapshotMode;
  /** Send Hello on start and Bye on close when discovery is on (default true). */
  hello?: boolean;
  /** Answer each probe twice (SOAP-over-UDP repetition, as wsdd and many cameras do). */
  answerTwice?: boolean;
  /** Wait this long before answering a probe (default 0). */
  answerDelayMs?: number;
  /** A second host listed first in XAddrs (a camera that advertises two addresses). */
  extraXAddr?: string;
  /** Log each request to stderr. */
  verbose?: boolean;
  /** Wall clock in ms; the camera's clock is this plus the offset (tests may pass their own). */
  now?: () => number;
}

export type ResolvedOptions = Required<Omit<OnvifSimOptions, 'advertiseAddress' | 'discoveryIfaceAddress' | 'rtspUrl' | 'subRtspUrl' | 'extraXAddr'>> &
  Pick<OnvifSimOptions, 'advertiseAddress' | 'discoveryIfaceAddress' | 'rtspUrl' | 'subRtspUrl' | 'extraXAddr'>;

export class OptionError extends Error {
  readonly code = 'ONVIF_SIM_BAD_OPTION';
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** A MAC address stable per serial, in a locally administered range. */
export function macForSerial(serial: string): string {
  const h = createHash('sha1').update(serial).digest();
  return ['02', '56', ...[...h.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** urn:uuid stable per serial (name-based, SHA-1, as RFC 4122 version 5 lays it out). */
export function endpointForSerial(serial: string): string {
  const h = createHash('sha1').update(`vigil-onvif-sim:${serial}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `urn:uuid:${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function resolveOptions(o: OnvifSimOptions = {}): ResolvedOptions {
  const serial = o.serial ?? '000123456';
  const r: ResolvedOptions = {
    bind: o.bind ?? '127.0.0.1',
    port: o.port ?? 0,
    advertiseAddress: o.advertiseAddress,
    discoveryIfaceAddress: o.discoveryIfaceAddress,
    discoveryPort: o.discoveryPort ?? 3702,
    name: o.name ?? 'Vigil Sim Camera',
    manufacturer: o.manufacturer ?? 'Vigil Simulated Cameras',
    model: o.model ?? 'SIM-IPC-2040',
    firmware: o.firmware ?? '2.40',
    serial,
    hardwareId: o.hardwareId ?? '1.0',
    mac: (o.mac ?? macForSerial(serial)).toLowerCase(),
    hostname: o.hostname ?? `simcam-${serial}`,
    location: o.location ?? 'test-lab',
    username: o.username ?? 'admin',
    password: o.password ?? 'admin',
    passwordText: o.passwordText ?? false,
    clockOffsetS: o.clockOffsetS ?? 0,
    authWindowS: o.authWindowS ?? 300,
    authFaultStatus: o.authFaultStatus ?? 400,
    rtspUrl: o.rtspUrl,
    subRtspUrl: o.subRtspUrl,
    profiles: o.profiles ?? 2,
    snapshot: o.snapshot ?? 'jpeg',
    hello: o.hello ?? true,
    answerTwice: o.answerTwice ?? false,
    answerDelayMs: o.answerDelayMs ?? 0,
    extraXAddr: o.extraXAddr,
    verbose: o.verbose ?? false,
    now: o.now ?? Date.now,
  };
  const bad = (name: string, why: string): never => {
    throw new OptionError(`onvif-sim: option ${name}: ${why}`);
  };
  if (!isIP(r.bind)) bad('bind', `not an IP address: ${r.bind}`);
  for (const [name, v] of [['advertiseAddress', r.advertiseAddress], ['discoveryIfaceAddress', r.discoveryIfaceAddress], ['extraXAddr', r.extraXAddr]] as const) {
    if (v !== undefined && isIP(v) !== 4) bad(name, `not an IPv4 address: ${v}`);
  }
  for (const [name, v, max] of [['port', r.port, 65535], ['discoveryPort', r.discoveryPort, 65535], ['answerDelayMs', r.answerDelayMs, 60_000], ['authWindowS', r.authWindowS, 1e9]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max) bad(name, `expected an integer 0..${max}, got ${v}`);
  }
  if (!Number.isFinite(r.clockOffsetS)) bad('clockOffsetS', `not a number: ${r.clockOffsetS}`);
  if (r.authFaultStatus !== 400 && r.authFaultStatus !== 401) bad('authFaultStatus', `400 or 401, got ${String(r.authFaultStatus)}`);
  if (r.profiles !== 1 && r.profiles !== 2) bad('profiles', `1 or 2, got ${String(r.profiles)}`);
  if (!['jpeg', 'html', 'none'].includes(r.snapshot)) bad('snapshot', `jpeg, html or none, got ${r.snapshot}`);
  if (!MAC.test(r.mac)) bad('mac', `expected aa:bb:cc:dd:ee:ff, got ${r.mac}`);
  for (const [name, v] of [['rtspUrl', r.rtspUrl], ['subRtspUrl', r.subRtspUrl]] as const) {
    if (v !== undefined && !/^rtsps?:\/\/\S+$/.test(v)) bad(name, `not an rtsp:// URL: ${v}`);
  }
  if (!r.serial || !r.username) bad(r.serial ? 'username' : 'serial', 'must not be empty');
  return r;
}

// --- command line -----------------------------------------------------------------------

type Kind = 'string' | 'int' | 'number' | 'flag';
const FLAGS: Record<string, [keyof OnvifSimOptions, Kind]> = {
  '--bind': ['bind', 'string'],
  '--port': ['port', 'int'],
  '--advertise-address': ['advertiseAddress', 'string'],
  '--discovery-iface-address': ['discoveryIfaceAddress', 'string'],
  '--discovery-port': ['discoveryPort', 'int'],
  '--name': ['name', 'string'],
  '--manufacturer': ['manufacturer', 'string'],
  '--model': ['model', 'string'],
  '--firmware': ['firmware', 'string'],
  '--serial': ['serial', 'string'],
  '--hardware-id': ['hardwareId', 'string'],
  '--mac': ['mac', 'string'],
  '--hostname': ['hostname', 'string'],
  '--location': ['location', 'string'],
  '--username': ['username', 'string'],
  '--password': ['password', 'string'],
  '--password-text': ['passwordText', 'flag'],
  '--clock-offset-s': ['clockOffsetS', 'number'],
  '--auth-window-s': ['authWindowS', 'int'],
  '--auth-fault-status': ['authFaultStatus', 'int'],
  '--rtsp-url': ['rtspUrl', 'string'],
  '--sub-rtsp-url': ['subRtspUrl', 'string'],
  '--profiles': ['profiles', 'int'],
  '--snapshot': ['snapshot', 'string'],
  '--no-hello': ['hello', 'flag'],
  '--answer-twice': ['answerTwice', 'flag'],
  '--answer-delay-ms': ['answerDelayMs', 'int'],
  '--extra-xaddr': ['extraXAddr', 'string'],
  '--verbose': ['verbose', 'flag'],
};

export const USAGE = `usage: node --experimental-strip-types tools/onvif-sim/main.ts [options]
  ${Object.keys(FLAGS).join(' ')}
Prints "ready <device service xaddr>" once listening; SIGTERM stops it (Bye, exit 0).`;

/** Parses argv (without node and script). `--flag=value` and `--flag value` both work. */
export function parseArgs(argv: string[]): OnvifSimOptions {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = FLAGS[flag];
    if (!spec) throw new OptionError(`onvif-sim: unknown option ${arg}\n${USAGE}`);
    const [key, kind] = spec;
    if (kind === 'flag') {
      if (eq > 0) throw new OptionError(`onvif-sim: ${flag} takes no value`);
      out[key] = flag !== '--no-hello';
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new OptionError(`onvif-sim: ${flag} needs a value`);
    if (kind === 'string') out[key] = value;
    else {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || (kind === 'int' && !Number.isInteger(n))) {
        throw new OptionError(`onvif-sim: ${flag} expects ${kind === 'int' ? 'an integer' : 'a number'}, got ${value}`);
      }
      out[key] = n;
    }
  }
  return out as OnvifSimOptions;
}

/** The command line that gives a child simulator these options (inverse of parseArgs). */
export function toArgs(o: OnvifSimOptions): string[] {
  const args: string[] = [];
  for (const [flag, [key, kind]] of Object.entries(FLAGS)) {
    const v = o[key];
    if (v === undefined || typeof v === 'function') continue;
    if (kind === 'flag') {
      if (flag === '--no-hello' ? v === false : v === true) args.push(flag);
    } else args.push(flag, String(v));
  }
  return args;
}
