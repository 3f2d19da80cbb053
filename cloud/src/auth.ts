import type { FastifyRequest } from 'fastify';
import { CloudError } from './errors.js';
import { safeEqual, sha256Hex } from './lib/ids.js';
import type { CloudStore, DeviceRecord } from './store/types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the device auth hook on /v1 routes that need a token. */
    device: DeviceRecord | null;
  }
}

/** Cookie set by the dashboard login; accepted for reads only (no CSRF on a GET). */
export const ADMIN_COOKIE = 'vigil_admin';

export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/** onRequest hook for the device API: a valid, unrevoked device token or 401 TOKEN_INVALID. */
export function deviceAuth(store: CloudStore, now: () => number) {
  return async (req: FastifyRequest): Promise<void> => {
    const token = bearerToken(req);
    if (!token) throw new CloudError('TOKEN_INVALID', 'a device token is required (Authorization: Bearer <token>)');
    const device = await store.deviceForToken(sha256Hex(token), now());
    if (!device) throw new CloudError('TOKEN_INVALID', 'the device token is unknown or revoked');
    req.device = device;
  };
}

/** The authenticated device; only called on routes behind deviceAuth. */
export function requireDevice(req: FastifyRequest): DeviceRecord {
  if (!req.device) throw new CloudError('TOKEN_INVALID', 'a device token is required');
  return req.device;
}

/** onRequest hook for the admin API: the admin token as a bearer, or the dashboard cookie on reads. */
export function adminAuth(adminToken: string) {
  return async (req: FastifyRequest): Promise<void> => {
    const bearer = bearerToken(req);
    const cookie = req.method === 'GET' || req.method === 'HEAD' ? readCookie(req, ADMIN_COOKIE) : undefined;
    const given = bearer ?? cookie;
    if (given === undefined || !safeEqual(given, adminToken)) {
      throw new CloudError('ADMIN_TOKEN_INVALID', 'the admin token is missing or wrong');
    }
  };
}

export function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
