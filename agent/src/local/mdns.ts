// mDNS (RFC 6762) responder: the device answers for `<hostname>.local` and advertises its status
// page as an `_http._tcp` service (RFC 6763), so a technician on the same LAN reaches it as
// http://vigil-1a2b.local/ or picks "Vigil vigil-1a2b" from a browser's service list.
//
// Library: multicast-dns 7.2.5 (with dns-packet and thunky, about 60 KB), used as the socket and
// the packet codec only; the records and the answering rules are here. Chosen over:
//  - bonjour-service (built on multicast-dns): it computes a service's A/AAAA records once, when
//    the service is published, so after a DHCP renewal changes the address it keeps answering
//    with the old one; its default error handler throws, and its host name is os.hostname()
//    unless given with the ".local" already on it.
//  - @homebridge/ciao (RFC 6762/6763 complete: probing, conflict renaming): about 1 MB with
//    debug and source-map-support (registered globally on import, rewriting every stack trace
//    of the agent), it runs `ip -o link show` in a shell every 15 s on Linux, and on a name
//    conflict it renames the host ("vigil-1a2b (2)"), away from the system host name that the
//    init script sets from the same serial.
// What that costs: no probing and no automatic renaming. The name comes from the board serial,
// so a clash needs two devices on one LAN whose serials end in the same 4 hex digits; another
// host answering for our name is detected and logged (with its address), which is what a
// technician needs to tell them apart.
//
// Addresses are read from os.networkInterfaces() at each query and announcement, never cached:
// DHCP may change them at any time. A query is answered with the addresses of the interface on
// the querier's subnet when one matches (RFC 6762 §15: an address on another network is of no
// use to it), else with all of them.
import makeMdns from 'multicast-dns';
import { networkInterfaces as osNetworkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { RemoteInfo } from 'node:dgram';
import type { Packet, Question, StringAnswer, SrvAnswer, TxtAnswer } from 'dns-packet';
import type { Logger } from '../lib/logger.js';
import { VigilError } from '../lib/errors.js';
import type { Service } from '../lib/service.js';

export const MDNS_PORT = 5353;
/** How long opening the multicast socket may take before mDNS is given up for this run. */
export const MDNS_START_TIMEOUT_MS = 5_000;
/** RFC 6762 §8.3: the first announcement is repeated after one second. */
export const MDNS_ANNOUNCE_REPEAT_MS = 1_000;
/** How often the addresses are compared with the last announced ones (a new DHCP lease is announced). */
export const MDNS_ADDRESS_POLL_MS = 5_000;
/** RFC 6762 §6: a multicast answer with shared records waits 20-120 ms. */
const SHARED_ANSWER_MIN_DELAY_MS = 20;
const SHARED_ANSWER_JITTER_MS = 100;
/** How long close() waits for the goodbye packet to go out. */
export const MDNS_GOODBYE_TIMEOUT_MS = 500;
/** RFC 6762 §10: 120 s for records that carry a host name, 75 min for the others. */
const HOST_TTL_S = 120;
const OTHER_TTL_S = 4_500;
/** RFC 6762 §6.7: answers to a one-shot (legacy unicast) query carry at most this TTL. */
const LEGACY_TTL_S = 10;
/** dns-packet decodes the class with the unicast-response bit set (IN | 0x8000) as this. */
const CLASS_IN_QU = 'UNKNOWN_32769';
const SERVICE_TYPE = '_http._tcp.local';
const SERVICE_TYPES_ENUMERATION = '_services._dns-sd._udp.local';

export interface MdnsOptions {
  /** The host name without ".local", e.g. 'vigil-1a2b' (see mdnsHostname). */
  hostname: string;
  /** The status page's TCP port, advertised in the _http._tcp service. */
  port: number;
  log: Logger;
  /** Names of the interfaces whose addresses are answered (e.g. ['eth0', 'wlan0']); default all but loopback. */
  interfaces?: readonly string[];
  /** Aborting it closes the responder, as close() does. */
  signal: AbortSignal;
  /** The service's instance name; default "Vigil <hostname>". */
  serviceName?: string;
  /** Where addresses come from, read at each query; default os.networkInterfaces. */
  networkInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

export interface MdnsResponder {
  /** False when the multicast socket could not be opened: the agent runs on without mDNS. */
  readonly active: boolean;
  /** 'vigil-1a2b.local' */
  readonly fqdn: string;
  /** Sends a goodbye (TTL 0) for our records and closes the socket. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * 'vigil-' + the last 4 hex digits of the board serial, lower case: the system host name, as
 * board/common/rootfs-overlay/usr/lib/vigil/host-name makes it (it keeps letters and digits
 * only, then takes the last 4; the same here, so the two never disagree).
 */
export function mdnsHostname(hardwareSerial: string): string {
  const tail = hardwareSerial.replace(/[^0-9a-z]/gi, '').toLowerCase().slice(-4);
  if (!tail) throw new VigilError('MDNS_BAD_SERIAL', `mDNS host name: the serial ${JSON.stringify(hardwareSerial)} has no letters or digits`);
  return `vigil-${tail}`;
}

/** One address of one interface, as os.networkInterfaces() gives it. */
export type MdnsIface = { name: string; info: NetworkInterfaceInfo };
/** The kinds of record this responder owns. */
export type MdnsRecord = StringAnswer | SrvAnswer | TxtAnswer;

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
}

function sameIpv4Subnet(a: NetworkInterfaceInfo, source: string): boolean {
  const mask = ipv4ToInt(a.netmask);
  return (ipv4ToInt(a.address) & mask) === (ipv4ToInt(source) & mask);
}

const lower = (s: string): string => s.toLowerCase();

/** The addresses we answer with: all but loopback's, of the named interfaces only when names are given. */
export function mdnsIfaces(all: NodeJS.Dict<NetworkInterfaceInfo[]>, names?: readonly string[]): MdnsIface[] {
  const out: MdnsIface[] = [];
  for (const [name, infos] of Object.entries(all)) {
    if (names && !names.includes(name)) continue;
    for (const info of infos ?? []) if (!info.internal) out.push({ name, info });
  }
  return out;
}

/**
 * The records we own, built from the addresses of now; `source` (the querier's IPv4 address)
 * narrows the addresses to its interface when one is on its subnet.
 */
export function mdnsRecords(o: { hostname: string; port: number; serviceName: string; ifaces: MdnsIface[]; source?: string }): MdnsRecord[] {
  const fqdn = `${o.hostname}.local`;
  const instance = `${o.serviceName}.${SERVICE_TYPE}`;
  let ifaces = o.ifaces;
  const source = o.source;
  if (source && /^\d+\.\d+\.\d+\.\d+$/.test(source)) {
    const onLink = ifaces.filter((i) => i.info.family === 'IPv4' && sameIpv4Subnet(i.info, source)).map((i) => i.name);
    if (onLink.length) ifaces = ifaces.filter((i) => onLink.includes(i.name));
  }
  const records: MdnsRecord[] = [];
  for (const { info } of ifaces) {
    if (info.family === 'IPv4') records.push({ name: fqdn, type: 'A', ttl: HOST_TTL_S, flush: true, data: info.address });
    else records.push({ name: fqdn, type: 'AAAA', ttl: HOST_TTL_S, flush: true, data: info.address.replace(/%.*$/, '') });
  }
  records.push(
    { name: SERVICE_TYPE, type: 'PTR', ttl: OTHER_TTL_S, data: instance },
    { name: instance, type: 'SRV', ttl: HOST_TTL_S, flush: true, data: { port: o.port, target: fqdn, priority: 0, weight: 0 } },
    { name: instance, type: 'TXT', ttl: OTHER_TTL_S, flush: true, data: ['path=/'] },
    { name: SERVICE_TYPES_ENUMERATION, type: 'PTR', ttl: OTHER_TTL_S, data: SERVICE_TYPE },
  );
  return records;
}

/** What to send for a query's questions: the answers, and the records a resolver will ask for next. */
export function mdnsAnswer(questions: readonly Question[], records: readonly MdnsRecord[]): { answers: MdnsRecord[]; additionals: MdnsRecord[]; unicast: boolean } {
  const answers = new Set<MdnsRecord>();
  let unicast = false;
  for (const q of questions) {
    // Strings, not dns-packet's unions: it decodes classes it has no name for as UNKNOWN_<n>.
    const klass: string = q.class ?? 'IN';
    const type: string = q.type;
    if (klass !== 'IN' && klass !== 'ANY' && klass !== CLASS_IN_QU) continue;
    const hits = records.filter((r) => lower(r.name) === lower(q.name) && (type === 'ANY' || r.type === type));
    if (hits.length && klass === CLASS_IN_QU) unicast = true;
    for (const r of hits) answers.add(r);
  }
  const additionals = new Set<MdnsRecord>();
  const addNamed = (name: string, types: readonly string[]): void => {
    for (const r of records) if (lower(r.name) === lower(name) && types.includes(r.type) && !answers.has(r)) additionals.add(r);
  };
  for (const a of answers) {
    if (a.type === 'PTR' && a.name === SERVICE_TYPE) addNamed(a.data, ['SRV', 'TXT']);
  }
  for (const a of [...answers, ...additionals]) {
    if (a.type === 'SRV') addNamed(a.data.target, ['A', 'AAAA']);
    if (a.type === 'A') addNamed(a.name, ['AAAA']);
    if (a.type === 'AAAA') addNamed(a.name, ['A']);
  }
  return { answers: [...answers], additionals: [...additionals], unicast };
}

const HOSTNAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

function checkMdnsOptions(o: { hostname: string; port: number }): void {
  if (!HOSTNAME_RE.test(o.hostname)) throw new VigilError('MDNS_BAD_HOSTNAME', `mDNS hostname must be one DNS label without ".local" (letters, digits, '-'), got "${o.hostname}"`);
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65_535) throw new VigilError('MDNS_BAD_PORT', `mDNS port must be an integer 1..65535, got ${o.port}`);
}

/**
 * The responder as a part of the agent's supervision tree (lib/service.ts): start() answers
 * until its signal aborts, then says goodbye. It never crashes for network reasons (see
 * startMdns); bad options are thrown by the constructor, at wiring time.
 */
export class MdnsService implements Service {
  readonly #o: Omit<MdnsOptions, 'signal'>;

  constructor(o: Omit<MdnsOptions, 'signal'>) {
    checkMdnsOptions(o);
    this.#o = o;
  }

  async start(signal: AbortSignal): Promise<void> {
    const responder = await startMdns({ ...this.#o, signal });
    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await responder.close();
  }
}

/**
 * Starts answering for `<hostname>.local` and advertising the status page. Never rejects for
 * network reasons: when the multicast socket cannot be opened (port 5353 held by a daemon that
 * does not share it, no usable interface) it logs once and returns an inactive responder.
 */
export async function startMdns(o: MdnsOptions): Promise<MdnsResponder> {
  checkMdnsOptions(o);
  const fqdn = `${o.hostname}.local`;
  const log = o.log.child({ mdns: fqdn });
  const serviceName = o.serviceName ?? `Vigil ${o.hostname}`;
  const readIfaces = o.networkInterfaces ?? osNetworkInterfaces;
  const inactive: MdnsResponder = { active: false, fqdn, close: async () => undefined };
  if (o.signal.aborted) return inactive;

  const ifaces = (): MdnsIface[] => mdnsIfaces(readIfaces(), o.interfaces);
  const records = (source?: string): MdnsRecord[] => mdnsRecords({ hostname: o.hostname, port: o.port, serviceName, ifaces: ifaces(), source });

  const mdns = makeMdns({ port: MDNS_PORT, reuseAddr: true });
  // Until the socket is open an error settles start-up; after that it is logged (onError below).
  let onError: (err: NodeJS.ErrnoException) => void = () => undefined;
  mdns.on('error', (err: NodeJS.ErrnoException) => onError(err));
  const opened = await new Promise<Error | null>((resolve) => {
    const timer = setTimeout(() => resolve(new VigilError('MDNS_START_TIMEOUT', `the mDNS socket did not open in ${MDNS_START_TIMEOUT_MS} ms`)), MDNS_START_TIMEOUT_MS);
    mdns.once('ready', () => {
      clearTimeout(timer);
      resolve(null);
    });
    onError = (err) => {
      clearTimeout(timer);
      resolve(err);
    };
  });
  if (opened) {
    log.warn({ err: opened }, `mDNS is off: cannot open UDP port ${MDNS_PORT} (${(opened as NodeJS.ErrnoException).code ?? opened.message}); the status page is still reachable by IP address`);
    mdns.destroy();
    return inactive;
  }

  let closed: Promise<void> | null = null;
  let sendFailing = false;
  const warned = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();

  const sent = (what: string) => (err: Error | null): void => {
    if (err && !sendFailing) {
      sendFailing = true;
      log.warn({ err }, `mDNS ${what} not sent (${(err as NodeJS.ErrnoException).code ?? err.message}): no multicast route or interface? ${fqdn} will not resolve until one is up; the status page is still reachable by IP address`);
    } else if (!err && sendFailing) {
      sendFailing = false;
      log.info(`mDNS ${what} sent again: ${fqdn} resolves`);
    }
  };

  const addressesOf = (rs: MdnsRecord[]): string[] => rs.filter((r) => r.type === 'A' || r.type === 'AAAA').map((r) => r.data as string).sort();
  let announced = '';
  const announce = (): void => {
    if (closed) return;
    const answers = records();
    const addresses = addressesOf(answers);
    announced = addresses.join(' ');
    log.debug({ addresses }, 'mDNS announce');
    mdns.respond({ answers }, sent('announcement'));
  };
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  mdns.on('query', (packet: Packet, rinfo: RemoteInfo) => {
    if (closed) return;
    // A one-shot resolver (a source port other than 5353, e.g. `dig -p 5353 @224.0.0.251`) is
    // answered directly, with its id and question, and short TTLs (RFC 6762 §6.7).
    const legacy = rinfo.port !== MDNS_PORT;
    const { answers, additionals, unicast } = mdnsAnswer(packet.questions ?? [], records(rinfo.address));
    if (!answers.length) return;
    log.debug({ from: rinfo.address, questions: packet.questions, legacy, unicast }, 'mDNS answer');
    if (legacy) {
      const short = (r: MdnsRecord): MdnsRecord => ({ ...r, flush: false, ttl: Math.min(r.ttl ?? LEGACY_TTL_S, LEGACY_TTL_S) });
      mdns.respond({ id: packet.id, questions: packet.questions, answers: answers.map(short), additionals: additionals.map(short) }, { port: rinfo.port, address: rinfo.address }, sent('answer'));
    } else if (unicast) {
      mdns.respond({ answers, additionals }, { port: rinfo.port, address: rinfo.address }, sent('answer'));
    } else if (answers.every((r) => r.flush)) {
      mdns.respond({ answers, additionals }, sent('answer'));
    } else {
      // Shared records (the service PTRs): every printer and NAS on the LAN answers these too,
      // so the answer waits 20-120 ms, as RFC 6762 §6 asks, to spread the replies out.
      later(SHARED_ANSWER_MIN_DELAY_MS + Math.floor(Math.random() * SHARED_ANSWER_JITTER_MS), () => {
        if (!closed) mdns.respond({ answers, additionals }, sent('answer'));
      });
    }
  });

  // Another host answering for our name: two devices whose serials end in the same 4 digits.
  mdns.on('response', (packet: Packet, rinfo: RemoteInfo) => {
    const all = Object.values(readIfaces()).flatMap((infos) => (infos ?? []).map((i) => i.address));
    if (all.includes(rinfo.address)) return; // our own announcement, looped back
    for (const a of packet.answers ?? []) {
      if ((a.type === 'A' || a.type === 'AAAA') && lower(a.name) === lower(fqdn) && (a.ttl ?? 1) > 0 && !all.includes(a.data)) {
        const key = `conflict ${rinfo.address}`;
        if (warned.has(key)) return;
        warned.add(key);
        log.warn({ other: rinfo.address, otherAddress: a.data }, `mDNS name conflict: ${rinfo.address} also answers for ${fqdn} (two devices whose serials end in the same 4 hex digits?); reach this one by IP address`);
        return;
      }
    }
  });

  // After start: a socket error (EACCES) or a membership that could not be joined (an interface
  // without multicast). Logged once per kind; the responder keeps what it has.
  const once = (level: 'warn' | 'debug', what: string) => (err: NodeJS.ErrnoException): void => {
    const key = `${what} ${err.code ?? err.message}`;
    if (warned.has(key)) return;
    warned.add(key);
    log[level]({ err }, `mDNS ${what}: ${err.code ?? err.message}`);
  };
  onError = once('warn', 'socket error');
  mdns.on('warning', once('debug', 'warning'));
  // A new DHCP lease or Wi-Fi coming up: tell the LAN the new address now, not when it asks.
  // (multicast-dns joins the group on new interfaces by itself, on its own 5 s timer.)
  const poll = setInterval(() => {
    if (addressesOf(records()).join(' ') !== announced) {
      announce();
      later(MDNS_ANNOUNCE_REPEAT_MS, announce);
    }
  }, MDNS_ADDRESS_POLL_MS);
  poll.unref();

  announce();
  later(MDNS_ANNOUNCE_REPEAT_MS, announce);
  log.info({ port: o.port, service: `${serviceName}.${SERVICE_TYPE}` }, `mDNS: answering for ${fqdn}`);

  const close = (): Promise<void> => {
    closed ??= (async () => {
      o.signal.removeEventListener('abort', onAbort);
      clearInterval(poll);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      // Goodbye (RFC 6762 §10.1): TTL 0 tells caches to forget us now, not in 75 minutes.
      const goodbye = mdnsRecords({ hostname: o.hostname, port: o.port, serviceName, ifaces: ifaces() }).map((r): MdnsRecord => ({ ...r, ttl: 0 }));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, MDNS_GOODBYE_TIMEOUT_MS);
        mdns.respond({ answers: goodbye }, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      await new Promise<void>((resolve) => mdns.destroy(() => resolve()));
      log.info('mDNS stopped');
    })();
    return closed;
  };
  const onAbort = (): void => void close();
  o.signal.addEventListener('abort', onAbort, { once: true });
  return { active: true, fqdn, close };
}
