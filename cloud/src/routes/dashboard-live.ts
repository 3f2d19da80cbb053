import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { sameOriginOnly } from '../auth.js';
import type { AppContext } from '../context.js';
import { eventsFilter, renderEvents } from '../dashboard/events-page.js';
import { esc, page } from '../dashboard/layout.js';
import { LIVE_SCRIPT, LIVE_SCRIPT_PATH } from '../dashboard/live-script.js';
import { CloudError } from '../errors.js';
import { acknowledgeAlert } from './events.js';
import { dashboardGuard, localPath } from './dashboard.js';
import { acceptFormBodies } from './form-body.js';

/**
 * The dashboard's live part, for people logged in (dashboardGuard; POSTs same-origin only):
 * the event timeline at /events, acknowledging an alert from a page (POST /alerts/:id/ack, a
 * plain form: it works without the script), and the script that keeps pages current.
 */
export const dashboardLiveRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const send = (reply: FastifyReply, html: string) => reply.type('text/html').header('cache-control', 'no-store').send(html);

  // The ack form posts its way back.
  acceptFormBodies(app);
  app.addHook('onRequest', sameOriginOnly(ctx));
  app.addHook('onRequest', dashboardGuard(ctx));

  app.get<{ Querystring: { level?: string; camera?: string } }>('/events', async (req, reply) => send(reply, await renderEvents(ctx, eventsFilter(req.query))));

  app.post<{ Params: { id: string }; Body: Record<string, string> | undefined }>(
    '/alerts/:id/ack',
    { schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } } },
    async (req, reply) => {
      const by = req.user?.name ?? 'unknown';
      try {
        const alert = await acknowledgeAlert(ctx, req.params.id, by);
        req.log.info({ alert: alert.id, by, acknowledgedBy: alert.acknowledgedBy }, 'alert acknowledged (dashboard)');
      } catch (err) {
        if (!(err instanceof CloudError) || err.code !== 'ALERT_NOT_FOUND') throw err;
        return send(reply.status(404), page('Vigil — alerts', `<p class="bad">No alert <code>${esc(req.params.id)}</code>.</p><p><a href="/alerts">Alerts</a></p>`));
      }
      return reply.redirect(req.body?.back === undefined ? '/alerts' : localPath(req.body.back), 303);
    },
  );

  // The name carries the content's hash: a browser may keep it for a year, a new version has a new name.
  app.get(LIVE_SCRIPT_PATH, async (_req, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'private, max-age=31536000, immutable')
      .header('x-content-type-options', 'nosniff')
      .send(LIVE_SCRIPT),
  );
};
