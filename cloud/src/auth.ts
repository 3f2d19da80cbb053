// Who may call what: devices with their token (/v1), people with a dashboard session or
// scripts with the admin token (/admin/v1, the dashboard), and the same-origin rule that keeps
// another site from posting the dashboard's forms with a logged-in person's cookie.
import type { FastifyRequest } from 'fastify';
import type { AppContext } from './context.js';
import { CloudError } from './errors.js';
import { safeEqual, sha256Hex } from './lib/ids.js';
import type { CloudStore, DeviceRecord } from './store/types.js';
import type { UserRecord } from './store/user-types.js';
import { SESSION_COOKIE, userOfSession } from './users/sessions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the device auth hook on /v1 routes that need a token. */
    device: DeviceRecord | null;
    /** Set by peopleAuth / adminAuth: the person (or the admin token) the request acts for. */
    user: RequestUser | null;
  }
}

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

/** Who a people-facing request acts for: a dashboard user (session) or a script (admin token). */
export interface RequestUser {
  name: string;
  via: 'session' | 'admin-token';
}

/** The name requests made with the admin token act under (in logs and req.user). */
export const ADMIN_TOKEN_USER = 'admin-token';

/** The enabled user of the request's unexpired session cookie, or null. */
export async function sessionUser(ctx: Pick<AppContext, 'store' | 'now'>, req: FastifyRequest): Promise<UserRecord | null> {
  const token = readCookie(req, SESSION_COOKIE);
  return token ? userOfSession(ctx.store.users, token, ctx.now()) : null;
}

/** A session cookie or the admin token as a bearer; null when the request has neither. */
export async function requestUser(ctx: Pick<AppContext, 'store' | 'now' | 'adminToken'>, req: FastifyRequest): Promise<RequestUser | null> {
  const bearer = bearerToken(req);
  if (bearer !== undefined) return safeEqual(bearer, ctx.adminToken) ? { name: ADMIN_TOKEN_USER, via: 'admin-token' } : null;
  const user = await sessionUser(ctx, req);
  return user ? { name: user.name, via: 'session' } : null;
}

/**
 * onRequest hook for people-facing routes that answer JSON: a dashboard session or the admin
 * token, else 401 SESSION_REQUIRED. Sets req.user. Pair POST routes with sameOriginOnly.
 */
export function peopleAuth(ctx: Pick<AppContext, 'store' | 'now' | 'adminToken'>) {
  return async (req: FastifyRequest): Promise<void> => {
    req.user = await requestUser(ctx, req);
    if (!req.user) throw new CloudError('SESSION_REQUIRED', 'log in to the dashboard, or send the admin token (Authorization: Bearer <token>)');
  };
}

/**
 * onRequest hook for the admin API: the admin token as a bearer for everything; a dashboard
 * session for reads only (GET, HEAD: the dashboard's thumbnails), since the dashboard's own
 * forms post to dashboard routes and scripts use the token.
 */
export function adminAuth(ctx: Pick<AppContext, 'store' | 'now' | 'adminToken'>) {
  return async (req: FastifyRequest): Promise<void> => {
    const bearer = bearerToken(req);
    const read = req.method === 'GET' || req.method === 'HEAD';
    const user = bearer === undefined && read ? await sessionUser(ctx, req) : null;
    if (user) {
      req.user = { name: user.name, via: 'session' };
      return;
    }
    if (bearer === undefined || !safeEqual(bearer, ctx.adminToken)) {
      throw new CloudError('ADMIN_TOKEN_INVALID', read ? 'the admin token (or a dashboard login) is missing or wrong' : 'the admin token is missing or wrong');
    }
    req.user = { name: ADMIN_TOKEN_USER, via: 'admin-token' };
  };
}

/**
 * Refuses a cross-site request (403 CROSS_SITE_REFUSED): when the browser says where the
 * request comes from (Origin, else Referer), that must be this server (its Host header, or the
 * configured public URL). Browsers send Origin on every cross-site POST; a request with neither
 * header is not a browser's cross-site form, and the SameSite=Strict cookie covers the rest.
 */
export function checkSameOrigin(req: FastifyRequest, publicUrl: string | undefined): void {
  const origin = header(req, 'origin') ?? header(req, 'referer');
  if (origin === undefined) return;
  let from: URL;
  try {
    from = new URL(origin);
  } catch {
    throw new CloudError('CROSS_SITE_REFUSED', 'refused: the request comes from an unreadable origin');
  }
  const host = header(req, 'host');
  const sameHost = host !== undefined && URL.canParse(`${from.protocol}//${host}`) && new URL(`${from.protocol}//${host}`).host === from.host;
  let samePublic = false;
  try {
    samePublic = publicUrl !== undefined && new URL(publicUrl).origin === from.origin;
  } catch {
    samePublic = false;
  }
  if (!sameHost && !samePublic) throw new CloudError('CROSS_SITE_REFUSED', `refused: a request from ${from.origin} to this site`);
}

/** onRequest hook form of checkSameOrigin for POST, PUT, PATCH and DELETE routes. */
export function sameOriginOnly(ctx: Pick<AppContext, 'config'>) {
  return async (req: FastifyRequest): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS') checkSameOrigin(req, ctx.config.publicUrl);
  };
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
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
