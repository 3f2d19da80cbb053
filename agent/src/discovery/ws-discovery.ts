// WS-Discovery (2005/04, the version ONVIF uses): a Probe for dn:NetworkVideoTransmitter sent
// to 239.255.255.250:3702 from a socket bound to one interface address, and a bounded wait for
// the ProbeMatches that come back by unicast. For cameras that ignore multicast (or sit behind
// a router), an optional unicast sweep probes each host of a subnet directly.
//
// Our own dgram code rather than agsh's Discovery: that one is a module-level singleton, binds
// by interface name only, cannot be cancelled, and throws from a timer callback (taking the
// process down) when an answer has no XAddrs — which is what Debian's wsdd sends.
import { createSocket, type Socket } from 'node:dgram';
import { randomUUID } from 'node:crypto';
import { VigilError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { child, children, parseXml, path, resolveQName, textOf, type XmlElement } from './xml.js';

export const WSD_MULTICAST_ADDRESS = '239.255.255.250';
export const WSD_PORT = 3702;
/** WS-Discovery's APP_MAX_DELAY is 500 ms; slow cameras take longer. */
export const DEFAULT_PROBE_WAIT_MS = 3_000;
/** SOAP-over-UDP repeats a multicast message (UDP is lossy); answers are deduplicated. */
const PROBE_REPEATS = 2;
const PROBE_REPEAT_GAP_MS = 150;
/** A site with more cameras than this is not a site this agent serves; stop collecting. */
export const MAX_PROBE_MATCHES = 256;

const NS_WSD = 'http://schemas.xmlsoap.org/ws/2005/04/discovery';
const NS_ONVIF_NETWORK = 'http://www.onvif.org/ver10/network/wsdl';
const NS_ONVIF_DEVICE = 'http://www.onvif.org/ver10/device/wsdl';
const ACTION_PROBE = `${NS_WSD}/Probe`;
const ACTION_PROBE_MATCHES = `${NS_WSD}/ProbeMatches`;

/** One device that answered a Probe as an ONVIF camera. */
export interface ProbeMatch {
  /** EndpointReference address: the device's stable identity in WS-Discovery (urn:uuid:…). */
  endpoint: string;
  /** The device service URL chosen from `xaddrs` (the one on the address that answered). */
  xaddr: string;
  xaddrs: string[];
  /** Type QNames as sent ("dn:NetworkVideoTransmitter tds:Device"). */
  types: string[];
  scopes: string[];
  metadataVersion: string | null;
  /** AppSequence InstanceId: changes when the device reboots. */
  instanceId: string | null;
  /** The IPv4 address the answer came from. */
  from: string;
  /** 'multicast' or 'unicast' (the sweep). */
  via: 'multicast' | 'unicast';
}

export function buildProbe(messageId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"' +
    ` xmlns:d="${NS_WSD}" xmlns:dn="${NS_ONVIF_NETWORK}">` +
    '<s:Header>' +
    `<a:Action s:mustUnderstand="1">${ACTION_PROBE}</a:Action>` +
    `<a:MessageID>${messageId}</a:MessageID>` +
    '<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>' +
    '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>' +
    '</s:Header>' +
    '<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>' +
    '</s:Envelope>'
  );
}

export type ParsedProbeAnswer =
  | { kind: 'matches'; relatesTo: string | null; matches: ProbeMatch[]; ignored: { endpoint: string | null; reason: string }[] }
  | { kind: 'ignored'; reason: string };

/**
 * Parses one datagram. Answers that are not ProbeMatches, and matches without XAddrs or
 * without a camera type, are ignored with the reason (wsdd answers with wsdp:Device and no
 * XAddrs; a printer answers with its own types).
 */
export function parseProbeMatches(xml: string, from: string, via: ProbeMatch['via'] = 'multicast'): ParsedProbeAnswer {
  let env: XmlElement;
  try {
    env = parseXml(xml);
  } catch (err) {
    return { kind: 'ignored', reason: (err as Error).message };
  }
  if (env.name !== 'Envelope') return { kind: 'ignored', reason: `root element is ${env.name}, not a SOAP Envelope` };
  const header = child(env, 'Header');
  const action = textOf(child(header, 'Action'));
  const body = child(env, 'Body');
  const pm = child(body, 'ProbeMatches');
  if (!pm || (action !== null && action !== ACTION_PROBE_MATCHES)) return { kind: 'ignored', reason: `not ProbeMatches (action ${action ?? 'none'})` };
  const relatesTo = textOf(child(header, 'RelatesTo'));
  const instanceId = child(header, 'AppSequence')?.attrs.InstanceId ?? null;
  const matches: ProbeMatch[] = [];
  const ignored: { endpoint: string | null; reason: string }[] = [];
  for (const m of children(pm, 'ProbeMatch')) {
    const endpoint = textOf(path(m, 'EndpointReference', 'Address'));
    const typesEl = child(m, 'Types');
    const types = splitList(textOf(typesEl));
    const xaddrs = splitList(textOf(child(m, 'XAddrs')));
    if (!endpoint) {
      ignored.push({ endpoint, reason: 'no EndpointReference' });
      continue;
    }
    if (!typesEl || !types.some((q) => isCameraType(resolveQName(typesEl, q)))) {
      ignored.push({ endpoint, reason: `not a camera (types: ${types.join(' ') || 'none'})` });
      continue;
    }
    const xaddr = pickXAddr(xaddrs, from);
    if (!xaddr) {
      ignored.push({ endpoint, reason: `no usable XAddrs (${xaddrs.join(' ') || 'none'})` });
      continue;
    }
    matches.push({
      endpoint,
      xaddr,
      xaddrs,
      types,
      scopes: splitList(textOf(child(m, 'Scopes'))),
      metadataVersion: textOf(child(m, 'MetadataVersion')),
      instanceId,
      from,
      via,
    });
  }
  return { kind: 'matches', relatesTo, matches, ignored };
}

/** ONVIF cameras announce dn:NetworkVideoTransmitter; some older ones only tds:Device. */
function isCameraType(t: { ns: string; local: string }): boolean {
  if (t.local === 'NetworkVideoTransmitter') return true; // some firmwares bind "dn" to the wrong namespace
  return t.local === 'Device' && t.ns === NS_ONVIF_DEVICE;
}

function splitList(s: string | null): string[] {
  return s ? s.split(/\s+/).filter(Boolean) : [];
}

/** The http(s) XAddr on the address that answered, else the first IPv4 one, else the first http(s) one. */
export function pickXAddr(xaddrs: string[], from: string): string | null {
  const urls = xaddrs.flatMap((x) => {
    try {
      const u = new URL(x);
      return u.protocol === 'http:' || u.protocol === 'https:' ? [u] : [];
    } catch {
      return [];
    }
  });
  const pick = urls.find((u) => u.hostname === from) ?? urls.find((u) => /^\d+\.\d+\.\d+\.\d+$/.test(u.hostname)) ?? urls[0];
  return pick ? pick.href : null;
}

/** ONVIF scopes: onvif://www.onvif.org/name/Front%20door → "Front door". */
export function scopeValue(scopes: string[], kind: 'name' | 'hardware' | 'location' | 'mac'): string | null {
  const prefix = `onvif://www.onvif.org/${kind}/`;
  const s = scopes.find((x) => x.toLowerCase().startsWith(prefix));
  if (!s) return null;
  const raw = s.slice(prefix.length);
  try {
    return decodeURIComponent(raw).trim() || null;
  } catch {
    return raw || null;
  }
}

export interface ProbeOptions {
  /** Local IPv4 address to bind to and send multicast from (the camera LAN's interface); default any. */
  interfaceAddress?: string | undefined;
  /** How long to collect answers after the probe went out. */
  waitMs: number;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  /** Where the probe goes; tests and the bench point it elsewhere. */
  target?: { address: string; port: number };
}

/** Multicast Probe: every camera that answers within `waitMs`, deduplicated by EndpointReference. */
export async function probeMulticast(o: ProbeOptions): Promise<ProbeMatch[]> {
  const target = o.target ?? { address: WSD_MULTICAST_ADDRESS, port: WSD_PORT };
  const socket = await openSocket(o.interfaceAddress, o.log);
  const collector = new MatchCollector(o.log, 'multicast');
  try {
    const messageId = `urn:uuid:${randomUUID()}`;
    collector.expect(messageId);
    socket.on('message', (msg, rinfo) => collector.take(msg, rinfo.address));
    if (target.address === WSD_MULTICAST_ADDRESS) {
      // TTL 1: the probe never leaves the camera LAN, whatever routers lie beyond it.
      socket.setMulticastTTL(1);
      if (o.interfaceAddress) socket.setMulticastInterface(o.interfaceAddress);
    }
    const probe = Buffer.from(buildProbe(messageId));
    const deadline = AbortSignal.any([AbortSignal.timeout(o.waitMs), ...(o.signal ? [o.signal] : [])]);
    for (let i = 0; i < PROBE_REPEATS && !deadline.aborted; i++) {
      if (i > 0) await sleep(PROBE_REPEAT_GAP_MS, deadline);
      if (deadline.aborted) break;
      await send(socket, probe, target.port, target.address);
    }
    await untilAborted(deadline, () => collector.size >= MAX_PROBE_MATCHES);
    return collector.results();
  } finally {
    socket.close();
  }
}

export interface SweepOptions {
  /** IPv4 subnet, "192.168.1.0/24". */
  cidr: string;
  /** A subnet with more hosts than this is refused (config validation says so first). */
  maxHosts: number;
  /** Probes in flight at once. */
  concurrency: number;
  /** How long one host has to answer. */
  hostWaitMs: number;
  /** The whole sweep ends by then, answered or not. */
  timeoutMs: number;
  interfaceAddress?: string | undefined;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  port?: number;
  /** Hosts to skip (the agent's own address). */
  skip?: string[];
}

/**
 * Unicast sweep: a Probe to port 3702 of each host in `cidr`, at most `concurrency` waiting at
 * once, each for at most `hostWaitMs`, all within `timeoutMs`.
 */
export async function sweepUnicast(o: SweepOptions): Promise<ProbeMatch[]> {
  const hosts = hostsOf(o.cidr, o.maxHosts).filter((h) => !o.skip?.includes(h));
  const port = o.port ?? WSD_PORT;
  const socket = await openSocket(o.interfaceAddress, o.log);
  const collector = new MatchCollector(o.log, 'unicast');
  const waiting = new Map<string, () => void>();
  socket.on('message', (msg, rinfo) => {
    if (collector.take(msg, rinfo.address) > 0) waiting.get(rinfo.address)?.();
  });
  const deadline = AbortSignal.any([AbortSignal.timeout(o.timeoutMs), ...(o.signal ? [o.signal] : [])]);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (!deadline.aborted && collector.size < MAX_PROBE_MATCHES) {
      const host = hosts[next++];
      if (host === undefined) return;
      const messageId = `urn:uuid:${randomUUID()}`;
      collector.expect(messageId);
      const answered = new AbortController();
      waiting.set(host, () => answered.abort());
      try {
        await send(socket, Buffer.from(buildProbe(messageId)), port, host);
        await sleep(o.hostWaitMs, AbortSignal.any([deadline, answered.signal]));
      } catch (err) {
        o.log?.debug({ host, err: (err as Error).message }, 'sweep probe not sent');
      } finally {
        waiting.delete(host);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, hosts.length)) }, worker));
    return collector.results();
  } finally {
    socket.close();
  }
}

/** The host addresses of an IPv4 CIDR (network and broadcast excluded for prefixes below /31). */
export function hostsOf(cidr: string, maxHosts: number): string[] {
  const n = cidrHostCount(cidr);
  if (n > maxHosts) throw new VigilError('SWEEP_TOO_LARGE', `${cidr} has ${n} hosts, more than the sweep's limit of ${maxHosts}`);
  const { base, prefix } = parseCidr(cidr);
  const first = prefix >= 31 ? base : base + 1;
  return Array.from({ length: n }, (_, i) => intToIp(first + i));
}

export function cidrHostCount(cidr: string): number {
  const { prefix } = parseCidr(cidr);
  const size = 2 ** (32 - prefix);
  return prefix >= 31 ? size : size - 2;
}

export function parseCidr(cidr: string): { base: number; prefix: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr.trim());
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const prefix = m ? Number(m[5]) : NaN;
  if (!m || octets.some((x) => x > 255) || !(prefix >= 8 && prefix <= 32)) {
    throw new VigilError('CIDR_INVALID', `"${cidr}" is not an IPv4 subnet like 192.168.1.0/24 (prefix /8 to /32)`);
  }
  const ip = octets.reduce((a, b) => a * 256 + b, 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (ip & mask) >>> 0, prefix };
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Collects matches from datagrams, for our message ids only, deduplicated by EndpointReference. */
class MatchCollector {
  readonly #ids = new Set<string>();
  readonly #byEndpoint = new Map<string, ProbeMatch>();

  constructor(
    private readonly log: Logger | undefined,
    private readonly via: ProbeMatch['via'],
  ) {}

  expect(messageId: string): void {
    this.#ids.add(messageId);
  }

  get size(): number {
    return this.#byEndpoint.size;
  }

  /** Returns how many new cameras the datagram brought. */
  take(msg: Buffer, from: string): number {
    const r = parseProbeMatches(msg.toString('utf8'), from, this.via);
    if (r.kind === 'ignored') {
      this.log?.debug({ from, reason: r.reason }, 'discovery answer ignored');
      return 0;
    }
    if (r.relatesTo !== null && !this.#ids.has(r.relatesTo)) {
      this.log?.debug({ from, relatesTo: r.relatesTo }, 'discovery answer to another probe ignored');
      return 0;
    }
    for (const i of r.ignored) this.log?.debug({ from, ...i }, 'discovery match ignored');
    let added = 0;
    for (const m of r.matches) {
      if (this.#byEndpoint.has(m.endpoint) || this.#byEndpoint.size >= MAX_PROBE_MATCHES) continue;
      this.#byEndpoint.set(m.endpoint, m);
      added++;
    }
    return added;
  }

  results(): ProbeMatch[] {
    return [...this.#byEndpoint.values()];
  }
}

async function openSocket(interfaceAddress: string | undefined, log: Logger | undefined): Promise<Socket> {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  let bound = false;
  let bindFailed: (err: Error) => void = () => undefined;
  // Always listened to: an unhandled 'error' event would end the process.
  socket.on('error', (err) => (bound ? log?.debug({ err: err.message }, 'discovery socket error') : bindFailed(err)));
  try {
    await new Promise<void>((resolve, reject) => {
      bindFailed = reject;
      socket.bind(0, interfaceAddress, resolve);
    });
    bound = true;
  } catch (err) {
    socket.close();
    const e = err as NodeJS.ErrnoException;
    throw new VigilError('DISCOVERY_SOCKET', `cannot bind a UDP socket to ${interfaceAddress ?? '0.0.0.0'}: ${e.code ?? e.message}`, { retryable: true, cause: err });
  }
  return socket;
}

function send(socket: Socket, data: Buffer, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.send(data, port, address, (err) => {
      if (!err) return resolve();
      const e = err as NodeJS.ErrnoException;
      reject(new VigilError('DISCOVERY_SEND', `cannot send a probe to ${address}:${port}: ${e.code ?? e.message}`, { retryable: true, cause: err }));
    }),
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Resolves when `signal` aborts or `enough()` holds (checked every 50 ms). */
async function untilAborted(signal: AbortSignal, enough: () => boolean): Promise<void> {
  while (!signal.aborted && !enough()) await sleep(50, signal);
}
