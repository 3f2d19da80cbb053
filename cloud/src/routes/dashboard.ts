import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ADMIN_COOKIE, readCookie } from '../auth.js';
import type { AppContext } from '../context.js';
import { renderAlerts } from '../dashboard/alerts-page.js';
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
