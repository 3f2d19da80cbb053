// HTTP authentication for camera snapshot URIs: Digest (RFC 7616: MD5 or SHA-256, qop=auth,
// also the old RFC 2069 form without qop) and Basic, answering the challenge the camera sent.
//
// Written here rather than taken from npm: `digest-header` splits the challenge on every comma
// (a realm or nonce holding one breaks) and the credentials on every colon (a password with
// a ':' is cut short); `digest-fetch` answers a Basic challenge with a Digest header, ignores
// the challenge's algorithm and brings four hashing packages for what node:crypto does.
import { createHash, randomBytes } from 'node:crypto';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header into its challenges ("Digest realm=..., Basic realm=...").
 * Quoted strings may hold commas, spaces and escaped quotes.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const skip = (chars: RegExp): void => {
    while (i < header.length && chars.test(header[i]!)) i++;
  };
  const token = (): string => {
    const start = i;
    skip(/[^\s,=]/);
    return header.slice(start, i);
  };
  while (i < header.length) {
    skip(/[\s,]/);
    const name = token();
    if (!name) {
      i++;
      continue;
    }
    skip(/\s/);
    // token68 values (Basic's base64, "abc==") are not used by cameras' challenges: "=" starts a param
    if (header[i] !== '=') {
      out.push({ scheme: name.toLowerCase(), params: {} });
      continue;
    }
    i++;
    skip(/\s/);
    let value = '';
    if (header[i] === '"') {
      i++;
      while (i < header.length && header[i] !== '"') {
        if (header[i] === '\\' && i + 1 < header.length) i++;
        value += header[i++];
      }
      i++;
    } else {
      value = token();
    }
    const challenge = out.at(-1);
    if (challenge) challenge.params[name.toLowerCase()] = value;
  }
  return out;
}

const HASHES: Record<string, 'md5' | 'sha256'> = { md5: 'md5', 'md5-sess': 'md5', 'sha-256': 'sha256', 'sha-256-sess': 'sha256' };

/** Counts requests answered under one nonce (the `nc` of RFC 7616); one per client. */
export class AuthState {
  #nonce = '';
  #count = 0;

  next(nonce: string): string {
    if (nonce !== this.#nonce) {
      this.#nonce = nonce;
      this.#count = 0;
    }
    return (++this.#count).toString(16).padStart(8, '0');
  }
}

/**
 * The Authorization header answering the strongest challenge we support (Digest before Basic),
 * or undefined when the camera asks for something else.
 */
export function authorization(
  challenges: Challenge[],
  req: { method: string; uri: string; username: string; password: string },
  state: AuthState,
  cnonce = randomBytes(8).toString('hex'),
): string | undefined {
  const digest = challenges.find((c) => c.scheme === 'digest' && HASHES[(c.params.algorithm ?? 'MD5').toLowerCase()] && c.params.nonce !== undefined);
  if (digest) {
    const p = digest.params;
    const algorithm = p.algorithm ?? 'MD5';
    const h = (s: string): string => createHash(HASHES[algorithm.toLowerCase()]!).update(s).digest('hex');
    const realm = p.realm ?? '';
    const nonce = p.nonce!;
    let ha1 = h(`${req.username}:${realm}:${req.password}`);
    const qop = p.qop?.split(',').map((q) => q.trim()).includes('auth') ? 'auth' : undefined;
    const nc = state.next(nonce);
    if (algorithm.toLowerCase().endsWith('-sess')) ha1 = h(`${ha1}:${nonce}:${cnonce}`);
    const ha2 = h(`${req.method.toUpperCase()}:${req.uri}`);
    const response = qop ? h(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : h(`${ha1}:${nonce}:${ha2}`);
    const q = (s: string): string => `"${s.replace(/(["\\])/g, '\\$1')}"`;
    const fields = [
      `username=${q(req.username)}`,
      `realm=${q(realm)}`,
      `nonce=${q(nonce)}`,
      `uri=${q(req.uri)}`,
      `algorithm=${algorithm}`,
      `response=${q(response)}`,
      ...(p.opaque !== undefined ? [`opaque=${q(p.opaque)}`] : []),
      ...(qop ? [`qop=${qop}`, `nc=${nc}`, `cnonce=${q(cnonce)}`] : []),
    ];
    return `Digest ${fields.join(', ')}`;
  }
  if (challenges.some((c) => c.scheme === 'basic')) {
    return `Basic ${Buffer.from(`${req.username}:${req.password}`, 'utf8').toString('base64')}`;
  }
  return undefined;
}
