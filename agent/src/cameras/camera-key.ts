// A camera's stable key: from its MAC, else its serial, else its WS-Discovery endpoint — never
// its IP address. Keys name spool folders and uploads, so they match [A-Za-z0-9_-]{1,64}.
import { createHash } from 'node:crypto';

/** "00-11-22-AA-BB-CC", "001122aabbcc" → "00:11:22:aa:bb:cc"; null for junk, all-zero, broadcast or multicast. */
export function normalizeMac(s: string | null | undefined): string | null {
  if (!s) return null;
  const hex = s.toLowerCase().replace(/[:\-.\s]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex) || /^0+$/.test(hex) || /^f+$/.test(hex)) return null;
  if (parseInt(hex.slice(0, 2), 16) & 1) return null;
  return hex.match(/../g)!.join(':');
}

/** "mac-001122aabbcc", or null when `mac` is not a usable MAC. */
export function macKey(mac: string | null | undefined): string | null {
  const m = normalizeMac(mac);
  return m ? `mac-${m.replace(/:/g, '')}` : null;
}

const short = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);

/** "sn-<serial>"; a serial with other characters, or a long one, is slugged with a hash suffix. */
export function serialKey(serial: string): string {
  const slug = serial.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
  if (slug === serial && slug.length <= 40) return `sn-${slug}`;
  return `sn-${slug.slice(0, 40)}-${short(serial)}`;
}

/** "ep-<uuid>" from urn:uuid:…, else a hash: the key of a camera we could not identify (yet). */
export function endpointKey(endpoint: string): string {
  const uuid = /^(?:urn:uuid:)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i.exec(endpoint.trim())?.[1];
  return uuid ? `ep-${uuid.toLowerCase()}` : `ep-${createHash('sha256').update(endpoint).digest('hex').slice(0, 32)}`;
}

export function cameraKey(c: { mac?: string | null; serial?: string | null; endpoint: string }): string {
  return macKey(c.mac) ?? (c.serial ? serialKey(c.serial) : endpointKey(c.endpoint));
}

/** A key made from the endpoint only: the camera has not told us who it is yet. */
export const isProvisionalKey = (key: string): boolean => key.startsWith('ep-');
