import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { readCookie, requestUser, sameOriginOnly, sessionUser } from '../auth.js';
import type { AppContext } from '../context.js';
import { issueClaimCode } from '../claim-codes.js';
import { renderAlerts } from '../dashboard/alerts-page.js';
import { renderClaimCode, renderClaimForm, renderLabel } from '../dashboard/claim-page.js';
import { CloudError } from '../errors.js';
import { renderCameras } from '../dashboard/cameras-page.js';
import { renderDevices } from '../dashboard/devices-page.js';
import { renderFirmware } from '../dashboard/firmware-page.js';
import { loginForm, page } from '../dashboard/layout.js';
import { renderOverview } from '../dashboard/overview-page.js';
import { LoginLockedError, UserLogin } from '../users/user-login.js';
import { endSession, SESSION_COOKIE, sessionCookie, startSession } from '../users/sessions.js';
import { acceptFormBodies } from './form-body.js';

/**
 * A minimal server-rendered dashboard for people: the overview at /, devices at /devices,
 * cameras at /cameras, fleet alerts at /alerts, firmware releases and deployments at /firmware;
 * events and acknowledging are in dashboard-live.ts. No build step; one small script for live
 * updates (dashboard/live-script.ts). People log in at /login with a user made by `vigil-cloud user add`;
 * the session lives in an HttpOnly, SameSite=Strict cookie. Every other page needs it (or the
 * admin token as a bearer, for scripts), and every POST must come from this site (auth.ts).
 */
export const dashboardRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const secure = ctx.config.publicUrl?.startsWith('https:') ?? false;
  const logins = new UserLogin(ctx.store.users, ctx.now);
  const send = (reply: FastifyReply, html: string) => reply.type('text/html').header('cache-control', 'no-store').send(html);
  const loginPage = (reply: FastifyReply, o: Parameters<typeof loginForm>[0] = {}) => send(reply, page('Vigil — log in', loginForm(o), { nav: false }));

  acceptFormBodies(app);

  app.addHook('onRequest', sameOriginOnly(ctx));
  app.addHook('onRequest', dashboardGuard(ctx));

  app.get<{ Querystring: { next?: string } }>('/login', async (req, reply) => {
    const next = localPath(req.query.next);
    if (await sessionUser(ctx, req)) return reply.redirect(next, 303);
    return loginPage(reply, { next: next === '/' ? undefined : next });
  });

  app.post<{ Body: Record<string, string> | undefined }>('/login', async (req, reply) => {
    const name = (req.body?.user ?? '').trim();
    const next = localPath(req.body?.next);
    const again = { user: name, next: next === '/' ? undefined : next };
    try {
      const user = await logins.login(name, req.body?.password ?? '');
      const session = await startSession(ctx.store.users, user.id, ctx.now(), ctx.config.sessionTtlS * 1000);
      req.log.info({ user: user.name }, 'dashboard login');
      const maxAgeS = Math.floor((session.expiresAt - ctx.now()) / 1000);
      return reply.header('set-cookie', sessionCookie(session.token, maxAgeS, secure)).redirect(next, 303);
    } catch (err) {
      if (err instanceof LoginLockedError) {
        req.log.warn({ user: name }, 'dashboard login refused: locked');
        return loginPage(reply.status(429).header('retry-after', String(err.retryAfterS)), { ...again, error: err.message });
      }
      if (!(err instanceof CloudError) || err.code !== 'LOGIN_FAILED') throw err;
      req.log.info({ user: name }, 'dashboard login refused: wrong user name or password');
      return loginPage(reply.status(401), { ...again, error: 'Wrong user name or password.' });
    }
  });

  app.post('/logout', async (req, reply) => {
    const token = readCookie(req, SESSION_COOKIE);
    if (token) await endSession(ctx.store.users, token);
    return reply.header('set-cookie', sessionCookie('', 0, secure)).redirect('/login', 303);
  });

  app.get('/', async (_req, reply) => send(reply, await renderOverview(ctx)));

  app.get('/devices', async (_req, reply) => send(reply, await renderDevices(ctx)));

  const siteNames = async () => (await ctx.store.listSites()).map((s) => s.name);

  app.get('/devices/new', async (_req, reply) => send(reply, renderClaimForm({ sites: await siteNames() })));

  app.post<{ Body: Record<string, string> | undefined }>('/devices/new', async (req, reply) => {
    const site = req.body?.site ?? '';
    try {
      const issued = await issueClaimCode(ctx.store, { site, ttlSeconds: Number(req.body?.ttl ?? ctx.config.claimCodeTtlS), now: ctx.now() });
      req.log.info({ site: issued.site, expiresAt: issued.expiresAt }, 'claim code issued (dashboard)');
      const cloudUrl = ctx.config.publicUrl ?? `${req.protocol}://${req.host}`;
      return send(reply, renderClaimCode(issued, cloudUrl));
    } catch (err) {
      if (!(err instanceof CloudError)) throw err;
      return send(reply.status(400), renderClaimForm({ sites: await siteNames(), error: err.message, site }));
    }
  });

  app.get<{ Params: { id: string } }>('/devices/:id/label', async (req, reply) => {
    const fd = (await ctx.store.fleet.fleetDevices(req.params.id))[0];
    if (!fd) return reply.status(404).type('text/html').send(page('Vigil', '<p>No such device.</p>'));
    return send(reply, renderLabel(fd.device, fd.health?.local ?? null));
  });

  app.get<{ Querystring: { device?: string } }>('/cameras', async (req, reply) => {
    return send(reply, await renderCameras(ctx, deviceParam(req.query.device)));
  });

  app.get<{ Querystring: { device?: string } }>('/alerts', async (req, reply) => {
    return send(reply, await renderAlerts(ctx, deviceParam(req.query.device)));
  });

  app.get('/firmware', async (_req, reply) => send(reply, await renderFirmware(ctx)));
};

/**
 * onRequest hook for dashboard pages (with sameOriginOnly for their POSTs): a logged-in person
 * (or the admin token) passes, with req.user set; a page asked for without a login leads to
 * /login and back after it; a POST without one gets the login form with 401. /login and
 * /logout pass through. For routes in other plugins too (their own scope needs both hooks).
 */
export function dashboardGuard(ctx: AppContext) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (PUBLIC_PATHS.has(req.routeOptions.url ?? '')) return;
    req.user = await requestUser(ctx, req);
    if (req.user) return;
    if (req.method === 'GET' || req.method === 'HEAD') {
      await reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
      return;
    }
    const html = page('Vigil — log in', loginForm({ error: 'Your session has ended: log in again, then repeat what you did.' }), { nav: false });
    await reply.status(401).type('text/html').header('cache-control', 'no-store').send(html);
  };
}

/** Routes anyone may reach: the login itself, and logging out (harmless without a session). */
const PUBLIC_PATHS = new Set(['/login', '/logout']);

/**
 * Where to go after logging in: a path on this site, else /. Refuses what a browser would read
 * as another site ("//evil", "/\\evil", "https://evil") and the login pages themselves.
 */
export function localPath(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.includes('\\') || [...next].some((c) => c < ' ')) return '/';
  const base = 'http://dashboard.invalid';
  let url: URL;
  try {
    url = new URL(next, base);
  } catch {
    return '/';
  }
  if (url.origin !== base || PUBLIC_PATHS.has(url.pathname)) return '/';
  return url.pathname + url.search;
}

/** ?device=: one device, or (absent or empty) all of them. */
function deviceParam(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
