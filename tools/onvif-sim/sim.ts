// startOnvifSim: an ONVIF camera simulator (Profile S subset) in-process — device and media
// services over SOAP 1.2/HTTP with WS-UsernameToken, a Digest-protected snapshot endpoint, and
// WS-Discovery. It is a test double named as such; docs/onvif-sim.md says what it proves.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WsDiscovery } from './discovery.ts';
import { endpointForSerial, resolveOptions, type OnvifSimOptions, type ResolvedOptions, type SnapshotMode } from './options.ts';
import { DEVICE_PATH, MEDIA_PATH, PRE_AUTH, SNAPSHOT_PATH, deviceOp, mediaOp, scopesOf, type ServiceContext } from './services.ts';
import { SnapshotEndpoint } from './snapshot.ts';
import { checkUsernameToken, envelope, faultXml, faults, unwrap, type SoapFault } from './soap.ts';
import { parseXml, XmlError } from './xml.ts';

const MAX_BODY_BYTES = 256 * 1024;
const SOAP_TYPE = 'application/soap+xml; charset=utf-8';

/** One request as the simulator saw it (tests read these to tell what a client did). */
export interface SimRequest {
  at: number;
  remote: string;
  path: string;
  /** Operation (SOAP) or 'snapshot'. */
  op: string;
  /** 'ok', 'pre-auth', 'unauthorized:<why>', 'fault:<subcode>', snapshot outcomes. */
  outcome: string;
}

export interface OnvifSim {
  /** Device service URL: http://<host>:<port>/onvif/device_service */
  xaddr: string;
  /** Host written in the XAddr, and the port the HTTP server listens on. */
  address: string;
  port: number;
  /** urn:uuid:… stable per serial (the WS-Discovery EndpointReference). */
  endpoint: string;
  snapshotUrl: string;
  options: ResolvedOptions;
  /** Every SOAP and snapshot request so far, oldest first. */
  requests: SimRequest[];
  /** Where WS-Discovery listens (port 0 in the options picks a free one), or null when off. */
  discovery: { address: string; port: number } | null;
  /** WS-Discovery probes answered so far (0 when discovery is off). */
  probesAnswered(): number;
  /** Moves the camera's clock: it reads wall clock + seconds (a camera whose clock reset). */
  setClockOffset(seconds: number): void;
  setSnapshotMode(mode: SnapshotMode): void;
  /** Sends Bye (when discovery is on) and stops; idempotent. */
  close(): Promise<void>;
}

function isWildcard(addr: string): boolean {
  return addr === '0.0.0.0' || addr === '::';
}

function hostOf(req: IncomingMessage, o: ResolvedOptions): string {
  if (o.advertiseAddress) return o.advertiseAddress;
  if (!isWildcard(o.bind)) return o.bind;
  return (req.socket.localAddress ?? o.bind).replace(/^::ffff:/, '');
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        resolve(null);
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Writes a SOAP reply with an explicit Content-Length: libonvif's client reads nothing else. */
function sendSoap(res: ServerResponse, status: number, xml: string): void {
  const body = Buffer.from(xml, 'utf8');
  res.writeHead(status, { 'Content-Type': SOAP_TYPE, 'Content-Length': body.length });
  res.end(body);
}

export async function startOnvifSim(options: OnvifSimOptions = {}): Promise<OnvifSim> {
  const o = resolveOptions(options);
  let clockOffsetS = o.clockOffsetS;
  const cameraNow = (): number => o.now() + clockOffsetS * 1000;
  const endpoint = endpointForSerial(o.serial);
  const scopes = scopesOf(o);
  const requests: SimRequest[] = [];
  const log = (msg: string): void => {
    if (o.verbose) process.stderr.write(`onvif-sim: ${msg}\n`);
  };
  const snapshot = new SnapshotEndpoint({ mode: o.snapshot, realm: `IP Camera(${o.serial.slice(-5)})`, username: o.username, password: o.password, now: o.now });
  let port = 0;

  const record = (req: IncomingMessage, path: string, op: string, outcome: string): void => {
    requests.push({ at: o.now(), remote: req.socket.remoteAddress ?? '', path, op, outcome });
    log(`${req.socket.remoteAddress} ${path} ${op} -> ${outcome}`);
  };

  async function handleSoap(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const fault = (f: SoapFault, op: string, outcome: string): void => {
      record(req, path, op, outcome);
      sendSoap(res, f.status, faultXml(f));
    };
    const text = await readBody(req);
    if (text === null) return fault(faults.wellFormed('request too large'), '?', 'fault:WellFormed');
    let unwrapped: ReturnType<typeof unwrap>;
    try {
      unwrapped = unwrap(parseXml(text));
    } catch (err) {
      if (!(err instanceof XmlError)) throw err;
      return fault(faults.wellFormed(err.message), '?', 'fault:WellFormed');
    }
    if ('status' in unwrapped) return fault(unwrapped, '?', `fault:${unwrapped.subcodes[0]}`);
    const { op, header } = unwrapped;
    const ctx: ServiceContext = { o, host: hostOf(req, o), port, cameraNowMs: cameraNow() };
    const preAuth = path === DEVICE_PATH && PRE_AUTH.has(op.local);
    if (!preAuth) {
      const auth = checkUsernameToken(header, { username: o.username, password: o.password, passwordText: o.passwordText, windowS: o.authWindowS }, ctx.cameraNowMs);
      if (!auth.ok) return fault(faults.notAuthorized(o.authFaultStatus), op.local, `unauthorized:${auth.why}`);
    }
    const answer = path === DEVICE_PATH ? deviceOp(ctx, op) : mediaOp(ctx, op);
    if (typeof answer !== 'string') return fault(answer, op.local, `fault:${answer.subcodes.at(-1)}`);
    record(req, path, op.local, preAuth ? 'pre-auth' : 'ok');
    sendSoap(res, 200, envelope(answer));
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    res.setHeader('Server', 'vigil-onvif-sim');
    if (path === SNAPSHOT_PATH) {
      record(req, path, 'snapshot', snapshot.handle(req, res));
      return;
    }
    if (path !== DEVICE_PATH && path !== MEDIA_PATH) {
      res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 9 }).end('Not Found');
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain', 'Content-Length': 18 }).end('Method Not Allowed');
      return;
    }
    handleSoap(req, res, path).catch((err: Error) => {
      log(`internal error: ${err.stack ?? err.message}`);
      if (!res.headersSent) sendSoap(res, 500, faultXml({ status: 500, code: 'Receiver', subcodes: [], reason: 'internal error' }));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;

  let discovery: WsDiscovery | null = null;
  if (o.discoveryIfaceAddress) {
    discovery = new WsDiscovery({ o: { ...o, discoveryIfaceAddress: o.discoveryIfaceAddress }, endpoint, scopes, port, devicePath: DEVICE_PATH, log });
    try {
      await discovery.start();
    } catch (err) {
      server.close();
      throw err;
    }
  }

  const address = o.advertiseAddress ?? (isWildcard(o.bind) ? (discovery?.host() ?? '127.0.0.1') : o.bind);
  const base = `http://${address}:${port}`;
  let closing: Promise<void> | null = null;
  return {
    xaddr: `${base}${DEVICE_PATH}`,
    address,
    port,
    endpoint,
    snapshotUrl: `${base}${SNAPSHOT_PATH}?profile=Profile_1`,
    options: o,
    requests,
    discovery: discovery?.listening() ?? null,
    probesAnswered: () => discovery?.probesAnswered ?? 0,
    setClockOffset(seconds: number): void {
      clockOffsetS = seconds;
    },
    setSnapshotMode(mode: SnapshotMode): void {
      snapshot.mode = mode;
      o.snapshot = mode;
    },
    close(): Promise<void> {
      closing ??= (async () => {
        await discovery?.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}
