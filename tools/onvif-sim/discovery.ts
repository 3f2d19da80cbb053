// WS-Discovery (2005/04, the version ONVIF uses) over UDP: answers Probe and Resolve, sends
// Hello on start and Bye on close, as a camera does. Probes come by multicast
// (239.255.255.250:3702, joined on one interface) or by unicast to port 3702 (a subnet sweep).
//
// Matching is by qualified name: `dn:NetworkVideoTransmitter` and `tds:Device` match, wsdd's
// `wsdp:Device` does not; an empty Types matches everything. A prefix the probe never
// declared falls back to the local name, as lenient camera firmware does.
import { randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { ResolvedOptions } from './options.ts';
import { NS } from './soap.ts';
import { child, parseXml, resolveQName, textAt, escapeXml as x, type XmlElement } from './xml.ts';

export const WSD_GROUP = '239.255.255.250';
const REPEAT_GAP_MS = 100;
const ADDRESS_POLL_MS = 1000;
const ACTION = 'http://schemas.xmlsoap.org/ws/2005/04/discovery';
const TO_DISCOVERY = 'urn:schemas-xmlsoap-org:ws:2005:04:discovery';
const TO_ANONYMOUS = 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous';
const TYPES: { ns: string; local: string }[] = [
  { ns: NS.dn, local: 'NetworkVideoTransmitter' },
  { ns: NS.tds, local: 'Device' },
];

export interface DiscoveryDeps {
  o: ResolvedOptions & { discoveryIfaceAddress: string };
  endpoint: string;
  scopes: string[];
  /** The HTTP port, for XAddrs. */
  port: number;
  devicePath: string;
  log: (msg: string) => void;
}

function isLoopback(addr: string): boolean {
  return addr.startsWith('127.');
}

function ifaceNameOf(addr: string): string | undefined {
  for (const [name, list] of Object.entries(networkInterfaces())) {
    if (list?.some((a) => a.family === 'IPv4' && a.address === addr)) return name;
  }
  return undefined;
}

function firstIPv4(name: string | undefined): string | undefined {
  const list = name ? networkInterfaces()[name] : Object.values(networkInterfaces()).flat();
  return list?.find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
}

/** True when a probe's scope (RFC 3986 prefix match by path segment, or exact) names one of ours. */
function scopeMatches(wanted: string, ours: string[], matchBy: string): boolean {
  if (matchBy.endsWith('/strcmp0')) return ours.includes(wanted);
  if (matchBy !== '' && !matchBy.endsWith('/rfc3986')) return false;
  const w = wanted.replace(/\/+$/, '').toLowerCase();
  return ours.some((s) => {
    const o = s.toLowerCase();
    return o === w || o.startsWith(`${w}/`);
  });
}

export function probeMatches(probe: XmlElement, scopes: string[]): boolean {
  const types = child(probe, 'Types');
  for (const q of (types?.text ?? '').split(/\s+/).filter(Boolean)) {
    const { ns, local } = resolveQName(types!, q);
    if (!TYPES.some((t) => t.local === local && (ns === undefined || t.ns === ns))) return false;
  }
  const scopesEl = child(probe, 'Scopes');
  const matchBy = scopesEl?.attrs.MatchBy ?? '';
  return (scopesEl?.text ?? '').split(/\s+/).filter(Boolean).every((s) => scopeMatches(s, scopes, matchBy));
}

export class WsDiscovery {
  private readonly d: DiscoveryDeps;
  private socket: dgram.Socket | null = null;
  private readonly instanceId = Math.floor(Date.now() / 1000);
  private messageNumber = 0;
  private metadataVersion = 1;
  private readonly multicast: boolean;
  private readonly ifaceName: string | undefined;
  private lastHost: string;
  private poll: NodeJS.Timeout | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Probes answered (each answer counted once, repetitions not). */
  probesAnswered = 0;

  constructor(d: DiscoveryDeps) {
    this.d = d;
    this.multicast = !isLoopback(d.o.discoveryIfaceAddress);
    this.ifaceName = ifaceNameOf(d.o.discoveryIfaceAddress);
    this.lastHost = this.host();
  }

  /** Host for XAddrs: the advertised one, or the interface's current address (it may change). */
  host(): string {
    const o = this.d.o;
    if (o.advertiseAddress) return o.advertiseAddress;
    if (o.bind !== '0.0.0.0') return o.bind;
    return firstIPv4(this.ifaceName) ?? o.discoveryIfaceAddress;
  }

  xaddrs(): string {
    const url = (h: string): string => `http://${h}:${this.d.port}${this.d.devicePath}`;
    return [...(this.d.o.extraXAddr ? [url(this.d.o.extraXAddr)] : []), url(this.host())].join(' ');
  }

  /** Where probes are heard (the port is the bound one: discoveryPort 0 picks a free port). */
  listening(): { address: string; port: number } {
    const a = this.socket!.address();
    return { address: a.address, port: a.port };
  }

  async start(): Promise<void> {
    const o = this.d.o;
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    this.socket = socket;
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    socket.on('error', (err) => this.d.log(`discovery socket error: ${err.message}`));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      // Loopback: unicast only, bound to that address (nothing reaches the host's real LAN).
      // Otherwise the wildcard, to hear both multicast and unicast probes in this namespace.
      socket.bind(o.discoveryPort, this.multicast ? '0.0.0.0' : o.discoveryIfaceAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (this.multicast) {
      socket.addMembership(WSD_GROUP, o.discoveryIfaceAddress);
      socket.setMulticastInterface(o.discoveryIfaceAddress);
      socket.setMulticastTTL(1);
      if (o.hello) await this.send(this.announce('Hello'), WSD_GROUP);
      if (!o.advertiseAddress && o.bind === '0.0.0.0') {
        // A camera whose address changes (a new DHCP lease) announces itself again.
        this.poll = setInterval(() => void this.checkAddress(), ADDRESS_POLL_MS);
        this.poll.unref();
      }
    }
  }

  async close(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const socket = this.socket;
    if (!socket) return;
    if (this.multicast && this.d.o.hello) await this.send(this.announce('Bye'), WSD_GROUP).catch((e: Error) => this.d.log(`discovery: Bye not sent: ${e.message}`));
    this.socket = null;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private async checkAddress(): Promise<void> {
    const now = this.host();
    if (now === this.lastHost) return;
    this.d.log(`address changed ${this.lastHost} -> ${now}`);
    this.lastHost = now;
    this.metadataVersion++;
    // The group membership stays with the interface; outgoing multicast must leave from the
    // address it has now.
    try {
      this.socket?.setMulticastInterface(now);
    } catch (err) {
      this.d.log(`discovery: cannot send multicast from ${now}: ${(err as Error).message}`);
    }
    if (this.d.o.hello) await this.send(this.announce('Hello'), WSD_GROUP).catch((e: Error) => this.d.log(`discovery: Hello not sent: ${e.message}`));
  }

  private send(msg: string, address: string, port = this.d.o.discoveryPort): Promise<void> {
    const socket = this.socket;
    if (!socket) return Promise.resolve();
    return new Promise((resolve, reject) => socket.send(msg, port, address, (err) => (err ? reject(err) : resolve())));
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let root: XmlElement;
    try {
      root = parseXml(msg.toString('utf8'));
    } catch {
      this.d.log(`discovery: ignored malformed datagram from ${rinfo.address}`);
      return;
    }
    const header = child(root, 'Header');
    const op = child(root, 'Body')?.children[0];
    if (!op || op.ns !== NS.wsd) return;
    const relatesTo = textAt(header, 'MessageID') ?? '';
    let reply: string | null = null;
    if (op.local === 'Probe' && probeMatches(op, this.d.scopes)) reply = this.match('ProbeMatches', 'ProbeMatch', relatesTo);
    else if (op.local === 'Resolve' && textAt(op, 'EndpointReference', 'Address') === this.d.endpoint) reply = this.match('ResolveMatches', 'ResolveMatch', relatesTo);
    this.d.log(`discovery: ${op.local} from ${rinfo.address}:${rinfo.port} -> ${reply ? 'answered' : 'no match'}`);
    if (!reply) return;
    this.probesAnswered++;
    const answer = reply;
    const sendIt = (): void => void this.send(answer, rinfo.address, rinfo.port).catch((e: Error) => this.d.log(`discovery send: ${e.message}`));
    this.later(this.d.o.answerDelayMs, () => {
      sendIt();
      if (this.d.o.answerTwice) this.later(REPEAT_GAP_MS, sendIt);
    });
  }

  private envelope(action: string, to: string, relatesTo: string | null, body: string): string {
    this.messageNumber++;
    return (
      `<?xml version="1.0" encoding="UTF-8"?>\n<s:Envelope xmlns:s="${NS.soap}" xmlns:a="${NS.wsa}" xmlns:d="${NS.wsd}" xmlns:dn="${NS.dn}" xmlns:tds="${NS.tds}">` +
      `<s:Header><a:MessageID>urn:uuid:${randomUUID()}</a:MessageID>` +
      (relatesTo ? `<a:RelatesTo>${x(relatesTo)}</a:RelatesTo>` : '') +
      `<a:To>${to}</a:To><a:Action>${ACTION}/${action}</a:Action>` +
      `<d:AppSequence InstanceId="${this.instanceId}" MessageNumber="${this.messageNumber}"/></s:Header>` +
      `<s:Body>${body}</s:Body></s:Envelope>`
    );
  }

  private description(): string {
    return (
      `<a:EndpointReference><a:Address>${this.d.endpoint}</a:Address></a:EndpointReference>` +
      `<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>` +
      `<d:Scopes>${x(this.d.scopes.join(' '))}</d:Scopes>` +
      `<d:XAddrs>${this.xaddrs()}</d:XAddrs><d:MetadataVersion>${this.metadataVersion}</d:MetadataVersion>`
    );
  }

  private match(outer: string, inner: string, relatesTo: string): string {
    return this.envelope(outer, TO_ANONYMOUS, relatesTo, `<d:${outer}><d:${inner}>${this.description()}</d:${inner}></d:${outer}>`);
  }

  private announce(kind: 'Hello' | 'Bye'): string {
    const body = kind === 'Hello' ? this.description() : `<a:EndpointReference><a:Address>${this.d.endpoint}</a:Address></a:EndpointReference>`;
    return this.envelope(kind, TO_DISCOVERY, null, `<d:${kind}>${body}</d:${kind}>`);
  }
}
