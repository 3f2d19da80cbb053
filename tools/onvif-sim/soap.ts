// SOAP 1.2 envelopes, ONVIF faults and the WS-UsernameToken check, done the way cameras do:
// PasswordDigest = Base64(SHA1(nonce + created + password)), with `created` judged against the
// camera's OWN clock within a freshness window. A client that ignores the camera's clock
// offset (GetSystemDateAndTime) is refused, as it would be by a real camera.
import { createHash, timingSafeEqual } from 'node:crypto';
import { child, textAt, type XmlElement } from './xml.ts';

export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  tds: 'http://www.onvif.org/ver10/device/wsdl',
  trt: 'http://www.onvif.org/ver10/media/wsdl',
  tt: 'http://www.onvif.org/ver10/schema',
  ter: 'http://www.onvif.org/ver10/error',
  dn: 'http://www.onvif.org/ver10/network/wsdl',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
  wsa: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  wsd: 'http://schemas.xmlsoap.org/ws/2005/04/discovery',
} as const;

const PASSWORD_DIGEST = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest';
const PASSWORD_TEXT = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText';

const DECLS = Object.entries({ s: NS.soap, tds: NS.tds, trt: NS.trt, tt: NS.tt, ter: NS.ter })
  .map(([p, u]) => ` xmlns:${p}="${u}"`)
  .join('');

export function envelope(body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<s:Envelope${DECLS}><s:Body>${body}</s:Body></s:Envelope>`;
}

export interface SoapFault {
  status: number;
  /** s:Sender or s:Receiver */
  code: 'Sender' | 'Receiver';
  /** ter: subcodes, outermost first (e.g. ['InvalidArgVal', 'NoProfile']). */
  subcodes: string[];
  reason: string;
}

export function faultXml(f: SoapFault): string {
  let sub = '';
  for (const s of [...f.subcodes].reverse()) sub = `<s:Subcode><s:Value>ter:${s}</s:Value>${sub}</s:Subcode>`;
  return envelope(
    `<s:Fault><s:Code><s:Value>s:${f.code}</s:Value>${sub}</s:Code>` +
      `<s:Reason><s:Text xml:lang="en">${f.reason}</s:Text></s:Reason></s:Fault>`,
  );
}

export const faults = {
  notAuthorized: (status: number): SoapFault => ({ status, code: 'Sender', subcodes: ['NotAuthorized'], reason: 'Sender not Authorized' }),
  actionNotSupported: (): SoapFault => ({ status: 500, code: 'Receiver', subcodes: ['ActionNotSupported'], reason: 'Optional Action Not Implemented' }),
  noProfile: (): SoapFault => ({ status: 400, code: 'Sender', subcodes: ['InvalidArgVal', 'NoProfile'], reason: 'The requested profile token ProfileToken does not exist' }),
  wellFormed: (why: string): SoapFault => ({ status: 400, code: 'Sender', subcodes: ['WellFormed'], reason: `Well-formed Error: ${why}` }),
  versionMismatch: (): SoapFault => ({ status: 400, code: 'Sender', subcodes: ['VersionMismatch'], reason: 'SOAP 1.2 envelopes only' }),
};

export interface SoapRequest {
  /** The first element of the Body: what is asked for. */
  op: XmlElement;
  header: XmlElement | undefined;
}

/** Finds Header and the operation in a parsed envelope, or says which fault it deserves. */
export function unwrap(root: XmlElement): SoapRequest | SoapFault {
  if (root.local !== 'Envelope') return faults.wellFormed('root is not an Envelope');
  if (root.ns !== NS.soap) return faults.versionMismatch();
  const body = child(root, 'Body', NS.soap);
  const op = body?.children[0];
  if (!op) return faults.wellFormed('empty Body');
  return { op, header: child(root, 'Header', NS.soap) };
}

export type AuthResult =
  | { ok: true; username: string }
  | { ok: false; why: 'missing' | 'unknown-user' | 'stale' | 'bad-digest' | 'text-refused' | 'bad-token' };

export interface Credentials {
  username: string;
  password: string;
  passwordText: boolean;
  windowS: number;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Checks the WS-Security UsernameToken in a SOAP header. `cameraNowMs` is the camera's clock
 * (wall clock plus its offset), against which Created must be fresh.
 */
export function checkUsernameToken(header: XmlElement | undefined, creds: Credentials, cameraNowMs: number): AuthResult {
  const security = header?.children.find((c) => c.local === 'Security' && c.ns === NS.wsse);
  const token = child(security, 'UsernameToken');
  if (!token) return { ok: false, why: 'missing' };
  const username = textAt(token, 'Username');
  const password = child(token, 'Password');
  if (username === undefined || !password) return { ok: false, why: 'bad-token' };
  if (!safeEqual(username, creds.username)) return { ok: false, why: 'unknown-user' };
  // WSS says a Password without Type is PasswordText.
  const type = password.attrs.Type ?? PASSWORD_TEXT;
  const given = password.text.trim();
  if (type === PASSWORD_TEXT) {
    if (!creds.passwordText) return { ok: false, why: 'text-refused' };
    return safeEqual(given, creds.password) ? { ok: true, username } : { ok: false, why: 'bad-digest' };
  }
  if (type !== PASSWORD_DIGEST) return { ok: false, why: 'bad-token' };
  const nonce = textAt(token, 'Nonce');
  const created = textAt(token, 'Created');
  if (nonce === undefined || created === undefined) return { ok: false, why: 'bad-token' };
  const createdMs = Date.parse(created);
  if (!Number.isFinite(createdMs)) return { ok: false, why: 'bad-token' };
  if (Math.abs(createdMs - cameraNowMs) > creds.windowS * 1000) return { ok: false, why: 'stale' };
  const expected = createHash('sha1')
    .update(Buffer.concat([Buffer.from(nonce, 'base64'), Buffer.from(created, 'utf8'), Buffer.from(creds.password, 'utf8')]))
    .digest('base64');
  return safeEqual(given, expected) ? { ok: true, username } : { ok: false, why: 'bad-digest' };
}
