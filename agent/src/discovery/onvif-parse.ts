// Parsing of the SOAP answers the ONVIF client uses. Pure functions over text, tested with
// fixtures (agent/test/fixtures/onvif/). Values stay exactly as the camera sent them: a
// serial "00123" or a firmware "2.40" is a string, never a number (agsh's onvif coerces them).
import { normalizeMac } from '../cameras/camera-key.js';
import { OnvifError } from './onvif-errors.js';
import { child, children, descendant, parseXml, path, resolveQName, textOf, type XmlElement } from './xml.js';

export interface SoapFault {
  /** Code and subcode values, local names ("Sender", "NotAuthorized"). */
  codes: string[];
  reason: string;
}

export interface SoapAnswer {
  body: XmlElement;
  fault: SoapFault | null;
}

/** Parses a SOAP 1.2 (or 1.1) envelope; ONVIF_BAD_RESPONSE when it is not one. */
export function parseSoap(xml: string, what: string): SoapAnswer {
  let env: XmlElement;
  try {
    env = parseXml(xml);
  } catch (err) {
    throw new OnvifError('ONVIF_BAD_RESPONSE', `${what}: ${(err as Error).message}`, { cause: err });
  }
  const body = child(env, 'Body');
  if (env.name !== 'Envelope' || !body) throw new OnvifError('ONVIF_BAD_RESPONSE', `${what}: not a SOAP envelope (root <${env.name}>)`);
  const f = child(body, 'Fault');
  return { body, fault: f ? parseFault(f) : null };
}

function parseFault(f: XmlElement): SoapFault {
  const codes: string[] = [];
  // SOAP 1.2: Code/Value, Code/Subcode/Value, nested Subcodes.
  let code = child(f, 'Code');
  while (code) {
    const v = child(code, 'Value');
    const text = textOf(v);
    if (v && text) codes.push(resolveQName(v, text).local);
    code = child(code, 'Subcode');
  }
  // SOAP 1.1: faultcode.
  const fc = child(f, 'faultcode');
  const fcText = textOf(fc);
  if (fc && fcText) codes.push(resolveQName(fc, fcText).local);
  const reason = textOf(path(f, 'Reason', 'Text')) ?? textOf(child(f, 'faultstring')) ?? '';
  return { codes, reason };
}

/** Fault subcodes with which cameras say "who are you?" (ONVIF ter:, WS-Security wsse:/wsu:). */
const AUTH_FAULT_CODES = new Set(['NotAuthorized', 'FailedAuthentication', 'InvalidSecurityToken', 'InvalidSecurity', 'MessageExpired', 'SenderNotAuthorized']);

export function isAuthFault(f: SoapFault): boolean {
  if (f.codes.some((c) => AUTH_FAULT_CODES.has(c))) return true;
  // Some firmwares put it only in words ("Sender not Authorized", "Authority failure").
  return /not\s*authori[sz]ed|unauthori[sz]ed|authentication|authority failure/i.test(f.reason);
}

/** The response element of an action, or ONVIF_BAD_RESPONSE naming it. */
export function responseElement(body: XmlElement, name: string): XmlElement {
  const el = child(body, name);
  if (!el) throw new OnvifError('ONVIF_BAD_RESPONSE', `no <${name}> in the answer`);
  return el;
}

/** The camera's clock (epoch ms, UTC) from GetSystemDateAndTimeResponse. */
export function parseSystemDateAndTime(body: XmlElement): number {
  const sdt = child(responseElement(body, 'GetSystemDateAndTimeResponse'), 'SystemDateAndTime');
  const utc = child(sdt, 'UTCDateTime');
  const local = child(sdt, 'LocalDateTime');
  const dt = utc ?? local;
  const num = (el: XmlElement | undefined, name: string): number => {
    const v = Number(textOf(child(el, name)));
    if (!Number.isInteger(v)) throw new OnvifError('ONVIF_BAD_RESPONSE', `GetSystemDateAndTime: no ${name}`);
    return v;
  };
  if (!dt) throw new OnvifError('ONVIF_BAD_RESPONSE', 'GetSystemDateAndTime: neither UTCDateTime nor LocalDateTime');
  const d = child(dt, 'Date');
  const t = child(dt, 'Time');
  let ms = Date.UTC(num(d, 'Year'), num(d, 'Month') - 1, num(d, 'Day'), num(t, 'Hour'), num(t, 'Minute'), num(t, 'Second'));
  if (Number.isNaN(ms)) throw new OnvifError('ONVIF_BAD_RESPONSE', 'GetSystemDateAndTime: not a date');
  if (!utc) {
    // Local time only: apply the POSIX TZ's standard offset ("CET-1CEST,..." is UTC+1; DST ignored).
    const tz = textOf(path(sdt, 'TimeZone', 'TZ'));
    ms += posixTzOffsetMs(tz);
  }
  return ms;
}

/** Milliseconds to add to local time to get UTC, from a POSIX TZ string ("CST-8" → -8 h). */
export function posixTzOffsetMs(tz: string | null): number {
  const m = tz ? /^(?:<[^>]+>|[A-Za-z]{3,})([+-]?)(\d{1,2})(?::(\d{2}))?/.exec(tz) : null;
  if (!m) return 0;
  const sign = m[1] === '-' ? -1 : 1;
  return sign * (Number(m[2]) * 3_600_000 + Number(m[3] ?? 0) * 60_000);
}

export interface DeviceInformation {
  manufacturer: string | null;
  model: string | null;
  firmwareVersion: string | null;
  serialNumber: string | null;
  hardwareId: string | null;
}

export function parseDeviceInformation(body: XmlElement): DeviceInformation {
  const r = responseElement(body, 'GetDeviceInformationResponse');
  return {
    manufacturer: textOf(child(r, 'Manufacturer')),
    model: textOf(child(r, 'Model')),
    firmwareVersion: textOf(child(r, 'FirmwareVersion')),
    serialNumber: textOf(child(r, 'SerialNumber')),
    hardwareId: textOf(child(r, 'HardwareId')),
  };
}

export interface NetworkInterface {
  token: string | null;
  name: string | null;
  enabled: boolean;
  /** Lower-case, colon-separated; null when missing or not a usable MAC. */
  mac: string | null;
}

export function parseNetworkInterfaces(body: XmlElement): NetworkInterface[] {
  const r = responseElement(body, 'GetNetworkInterfacesResponse');
  return children(r, 'NetworkInterfaces').map((n) => ({
    token: n.attrs.token ?? null,
    name: textOf(path(n, 'Info', 'Name')),
    enabled: textOf(child(n, 'Enabled'))?.toLowerCase() !== 'false',
    mac: normalizeMac(textOf(path(n, 'Info', 'HwAddress'))),
  }));
}

/** The camera's identity MAC: the first enabled interface with a usable address. */
export function primaryMac(ifaces: NetworkInterface[]): string | null {
  return (ifaces.find((i) => i.enabled && i.mac) ?? ifaces.find((i) => i.mac))?.mac ?? null;
}

/** The Media service address from GetCapabilitiesResponse (null when the camera names none). */
export function parseMediaXAddr(body: XmlElement): string | null {
  const caps = child(responseElement(body, 'GetCapabilitiesResponse'), 'Capabilities');
  return textOf(path(caps, 'Media', 'XAddr'));
}

export interface MediaProfile {
  token: string;
  name: string | null;
  encoding: string | null;
  width: number | null;
  height: number | null;
}

export function parseProfiles(body: XmlElement): MediaProfile[] {
  const r = responseElement(body, 'GetProfilesResponse');
  return children(r, 'Profiles').flatMap((p) => {
    const token = p.attrs.token;
    if (!token) return [];
    const vec = child(p, 'VideoEncoderConfiguration');
    const dim = (n: string): number | null => {
      const v = Number(textOf(path(vec, 'Resolution', n)));
      return Number.isInteger(v) && v > 0 ? v : null;
    };
    return [{ token, name: textOf(child(p, 'Name')), encoding: textOf(child(vec, 'Encoding')), width: dim('Width'), height: dim('Height') }];
  });
}

/**
 * The profile to capture from: the largest video resolution (the original variant is full
 * resolution), the first profile on a tie or when none says.
 */
export function chooseProfile(profiles: MediaProfile[]): MediaProfile | null {
  let best: MediaProfile | null = null;
  for (const p of profiles) {
    const area = (p.width ?? 0) * (p.height ?? 0);
    if (!best || area > (best.width ?? 0) * (best.height ?? 0)) best = p;
  }
  return best;
}

/** Uri of a GetStreamUriResponse or GetSnapshotUriResponse. */
export function parseMediaUri(body: XmlElement, response: 'GetStreamUriResponse' | 'GetSnapshotUriResponse'): string {
  const uri = textOf(descendant(responseElement(body, response), 'Uri'));
  if (!uri) throw new OnvifError('ONVIF_BAD_RESPONSE', `${response}: no Uri`);
  return uri;
}
