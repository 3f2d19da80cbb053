import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ADMIN_COOKIE, readCookie } from '../auth.js';
import type { AppContext } from '../context.js';
import { issueClaimCode } from '../claim-codes.js';
import { renderAlerts } from '../dashboard/alerts-page.js';
import { renderClaimCode, renderClaimForm, renderLabel } from '../dashboard/claim-page.js';
import { CloudError } from '../errors.js';
import { renderCameras } from '../dashboard/cameras-page.js';
import { renderDevices } from '../dashboard/devices-page.js';
import { renderFirmware } from '../dashboard/firmware-page.js';
import { LOGIN_FORM, page } from '../dashboard/layout.js';
import { renderOverview } from '../dashboard/overview-page.js';
import { safeEqual } from '../lib/ids.js';

const COOKIE_MAX_AGE_S = 7 * 86_400;

/**
 * A minimal server-rendered dashboard for people: the overview at /, devices at /devices,
 * cameras at /cameras, fleet alerts at /alerts, firmware releases and deployments at /firmware.
 * No build step, no script. Log in once with /?token=<admin token>: the token moves into an
 * HttpOnly cookie and out of the address bar.
 */
export const dashboardRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const secure = ctx.config.publicUrl?.startsWith('https:') ? '; Secure' : '';
  const loggedIn = (req: FastifyRequest) => {
    const cookie = readCookie(req, ADMIN_COOKIE);
    return cookie !== undefined && safeEqual(cookie, ctx.adminToken);
  };
  const send = (reply: FastifyReply, html: string) => reply.type('text/html').header('cache-control', 'no-store').send(html);
  const login = (reply: FastifyReply) => reply.type('text/html').send(page('Vigil', LOGIN_FORM, { nav: false }));

  app.get<{ Querystring: { token?: string } }>('/', async (req, reply) => {
    const given = req.query.token;
    if (typeof given === 'string') {
      if (!safeEqual(given, ctx.adminToken)) return reply.status(401).type('text/html').send(page('Vigil', '<p>Wrong token.</p>' + LOGIN_FORM, { nav: false }));
      const cookie = `${ADMIN_COOKIE}=${encodeURIComponent(given)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${COOKIE_MAX_AGE_S}${secure}`;
      return reply.header('set-cookie', cookie).redirect('/', 303);
    }
    return loggedIn(req) ? send(reply, await renderOverview(ctx)) : login(reply);
  });

  app.get('/devices', async (req, reply) => (loggedIn(req) ? send(reply, await renderDevices(ctx)) : login(reply)));

  // Forms post urlencoded bodies; URLSearchParams reads them (one small parser, this scope only).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  const siteNames = async () => (await ctx.store.listSites()).map((s) => s.name);

  app.get('/devices/new', async (req, reply) => (loggedIn(req) ? send(reply, renderClaimForm({ sites: await siteNames() })) : login(reply)));

  app.post<{ Body: Record<string, string> | undefined }>('/devices/new', async (req, reply) => {
    if (!loggedIn(req)) return login(reply.status(401));
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
    if (!loggedIn(req)) return login(reply);
    const fd = (await ctx.store.fleet.fleetDevices(req.params.id))[0];
    if (!fd) return reply.status(404).type('text/html').send(page('Vigil', '<p>No such device.</p>'));
    return send(reply, renderLabel(fd.device, fd.health?.local ?? null));
  });

  app.get<{ Querystring: { device?: string } }>('/cameras', async (req, reply) => {
    return loggedIn(req) ? send(reply, await renderCameras(ctx, deviceParam(req.query.device))) : login(reply);
  });

  app.get<{ Querystring: { device?: string } }>('/alerts', async (req, reply) => {
    return loggedIn(req) ? send(reply, await renderAlerts(ctx, deviceParam(req.query.device))) : login(reply);
  });

  app.get('/firmware', async (req, reply) => (loggedIn(req) ? send(reply, await renderFirmware(ctx)) : login(reply)));
};

/** ?device=: one device, or (absent or empty) all of them. */
function deviceParam(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
