// SOAP 1.2 over HTTP for ONVIF: the envelope with a WS-Security UsernameToken, and one POST
// with a deadline, a size limit and transport errors mapped to stable codes.
import { createHash, randomBytes } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import type { CameraCredentials } from '../cameras/types.js';
import { MAX_XML_BYTES, xmlEscape } from './xml.js';
import { OnvifError, transportErrorCode } from './onvif-errors.js';

const NS_WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
const NS_WSU = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const PASSWORD_DIGEST = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest';
const PASSWORD_TEXT = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText';
const BASE64_BINARY = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';

/** How the password travels in the UsernameToken. */
export type AuthMode = 'digest' | 'text';

export interface UsernameToken {
  credentials: CameraCredentials;
  mode: AuthMode;
  /** The camera's clock, epoch ms: Created must be close to it, not to ours. */
  created: number;
  /** 16 random bytes; fixed in tests. */
  nonce?: Buffer;
}

/** WS-Security time stamps without milliseconds: some cameras reject "…:05.123Z". */
export function wsuTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** PasswordDigest = Base64(SHA-1(nonce + created + password)), password as UTF-8. */
export function passwordDigest(nonce: Buffer, created: string, password: string): string {
  return createHash('sha1').update(Buffer.concat([nonce, Buffer.from(created, 'utf8'), Buffer.from(password, 'utf8')])).digest('base64');
}

export function securityHeader(t: UsernameToken): string {
  const nonce = t.nonce ?? randomBytes(16);
  const created = wsuTime(t.created);
  const password = t.mode === 'digest' ? passwordDigest(nonce, created, t.credentials.password) : xmlEscape(t.credentials.password);
  return (
    `<wsse:Security s:mustUnderstand="1" xmlns:wsse="${NS_WSSE}" xmlns:wsu="${NS_WSU}">` +
    '<wsse:UsernameToken>' +
    `<wsse:Username>${xmlEscape(t.credentials.username)}</wsse:Username>` +
    `<wsse:Password Type="${t.mode === 'digest' ? PASSWORD_DIGEST : PASSWORD_TEXT}">${password}</wsse:Password>` +
    `<wsse:Nonce EncodingType="${BASE64_BINARY}">${nonce.toString('base64')}</wsse:Nonce>` +
    `<wsu:Created>${created}</wsu:Created>` +
    '</wsse:UsernameToken>' +
    '</wsse:Security>'
  );
}

/** A SOAP 1.2 envelope around `body` (one element), with a security header when `token` is given. */
export function envelope(body: string, token?: UsernameToken): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"' +
    ' xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">' +
    `<s:Header>${token ? securityHeader(token) : ''}</s:Header>` +
    `<s:Body>${body}</s:Body>` +
    '</s:Envelope>'
  );
}

export interface HttpAnswer {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface PostOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  dispatcher?: Dispatcher | undefined;
  headers?: Record<string, string>;
}

/**
 * POSTs a SOAP request and reads the whole answer, whatever its status: within `timeoutMs` from
 * connect to the last byte, at most MAX_XML_BYTES.
 */
export async function postSoap(url: string, action: string, xml: string, o: PostOptions): Promise<HttpAnswer> {
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  const what = `${action.slice(action.lastIndexOf('/') + 1)} at ${url}`;
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': `application/soap+xml; charset=utf-8; action="${action}"`, ...o.headers },
      body: xml,
      signal,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
    });
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of res.body) {
      bytes += (chunk as Buffer).length;
      if (bytes > MAX_XML_BYTES) {
        res.body.destroy();
        throw new OnvifError('ONVIF_BAD_RESPONSE', `${what}: answer larger than ${MAX_XML_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    return { status: res.statusCode, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers };
  } catch (err) {
    if (err instanceof OnvifError) throw err;
    if (o.signal?.aborted) throw new OnvifError('ONVIF_ABORTED', `${what}: stopped`, { cause: err });
    const code = timeout.aborted ? 'ONVIF_TIMEOUT' : (transportErrorCode(err) ?? 'ONVIF_UNREACHABLE');
    const detail = (err as { code?: string }).code ?? (err as Error).message;
    throw new OnvifError(code, `${what}: ${code === 'ONVIF_TIMEOUT' ? `no answer within ${o.timeoutMs} ms` : detail}`, { cause: err });
  }
}
