// The snapshot endpoint behind GetSnapshotUri: HTTP Digest (RFC 7616/2617, MD5, qop=auth),
// as IP cameras do it. Modes: `jpeg` (a real JPEG), `html` (200 text/html: a login page, a
// camera that lies about what it serves), `none` (no snapshot at all: 404).
//
// The challenge starts with `Digest realm=` and the nonce is hex: node-onvif reads the header
// with a naive split and needs both, as do several camera clients in the field.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SnapshotMode } from './options.ts';
import { SNAPSHOT_JPEG } from './snapshot-jpeg.ts';

const NONCE_TTL_MS = 5 * 60_000;
const MAX_NONCES = 1000;
const LOGIN_PAGE = '<!DOCTYPE html><html><head><title>Web Login</title></head><body><form method="post" action="/login">' +
  '<input name="user"><input name="pass" type="password"><button>Login</button></form></body></html>';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** Splits a Digest Authorization header into its parameters (quoted or bare values). */
export function parseDigest(header: string): Record<string, string> | null {
  const m = /^Digest\s+(.*)$/is.exec(header.trim());
  if (!m) return null;
  const out: Record<string, string> = {};
  for (const p of m[1]!.matchAll(/([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    out[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return out;
}

export class SnapshotEndpoint {
  mode: SnapshotMode;
  readonly realm: string;
  private readonly nonces = new Map<string, number>();
  private readonly username: string;
  private readonly password: string;
  private readonly now: () => number;

  constructor(opts: { mode: SnapshotMode; realm: string; username: string; password: string; now: () => number }) {
    this.mode = opts.mode;
    this.realm = opts.realm;
    this.username = opts.username;
    this.password = opts.password;
    this.now = opts.now;
  }

  /** Handles GET on the snapshot path. Returns what happened, for the simulator's log. */
  handle(req: IncomingMessage, res: ServerResponse): string {
    if (this.mode === 'none') {
      this.send(res, 404, 'text/plain', 'Not Found');
      return 'none';
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.send(res, 405, 'text/plain', 'Method Not Allowed');
      return 'method';
    }
    const verdict = this.check(req);
    if (verdict !== 'ok') {
      this.challenge(res, verdict === 'stale');
      return `unauthorized:${verdict}`;
    }
    const headOnly = req.method === 'HEAD';
    if (this.mode === 'html') this.send(res, 200, 'text/html; charset=utf-8', LOGIN_PAGE, headOnly);
    else this.send(res, 200, 'image/jpeg', SNAPSHOT_JPEG, headOnly);
    return this.mode;
  }

  private check(req: IncomingMessage): 'ok' | 'missing' | 'stale' | 'bad' {
    const header = req.headers.authorization;
    if (!header) return 'missing';
    const d = parseDigest(header);
    if (!d) return 'bad'; // Basic and anything else: cameras answer with the Digest challenge again
    const { username, realm, nonce, uri, response, qop, nc, cnonce } = d;
    const algorithm = (d.algorithm ?? 'MD5').toUpperCase();
    if (!username || !nonce || !uri || !response || algorithm !== 'MD5' || realm !== this.realm) return 'bad';
    if (qop !== 'auth' || !nc || !cnonce) return 'bad';
    if (uri !== req.url) return 'bad';
    const issued = this.nonces.get(nonce);
    if (issued === undefined || this.now() - issued > NONCE_TTL_MS) return 'stale';
    if (username !== this.username) return 'bad';
    const ha1 = md5(`${username}:${this.realm}:${this.password}`);
    const ha2 = md5(`${req.method}:${uri}`);
    const expected = md5(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`);
    const a = Buffer.from(expected);
    const b = Buffer.from(response.toLowerCase());
    return a.length === b.length && timingSafeEqual(a, b) ? 'ok' : 'bad';
  }

  private challenge(res: ServerResponse, stale: boolean): void {
    const now = this.now();
    for (const [n, t] of this.nonces) if (now - t > NONCE_TTL_MS || this.nonces.size >= MAX_NONCES) this.nonces.delete(n);
    const nonce = randomBytes(16).toString('hex');
    this.nonces.set(nonce, now);
    res.setHeader('WWW-Authenticate', `Digest realm="${this.realm}", qop="auth", nonce="${nonce}", algorithm=MD5, stale=${stale ? 'TRUE' : 'FALSE'}`);
    this.send(res, 401, 'text/html; charset=utf-8', '<!DOCTYPE html><html><head><title>401 Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>');
  }

  private send(res: ServerResponse, status: number, type: string, body: string | Buffer, headOnly = false): void {
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': buf.length });
    res.end(headOnly ? undefined : buf);
  }
}
