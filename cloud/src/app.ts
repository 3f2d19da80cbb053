import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AppContext } from './context.js';
import { CloudError, errorBody } from './errors.js';
import { toErrorBody } from './http-errors.js';
import { adminApi } from './routes/admin-api.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { dashboardLiveRoutes } from './routes/dashboard-live.js';
import { deviceApi } from './routes/device-api.js';
import { eventStreamRoutes } from './routes/event-stream.js';
import { objectRoutes } from './routes/objects.js';

/** JSON API bodies are small; frame bytes never pass through the JSON parser. */
export const JSON_BODY_LIMIT = 64 * 1024;

/** Builds the HTTP app from its parts; main.ts decides what the parts are. */
export async function buildApp(ctx: AppContext, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: JSON_BODY_LIMIT,
    // Closing the app also closes idle keep-alive sockets, so a restart on the same port works.
    forceCloseConnections: 'idle',
    // One line per refused request (below) instead of two per request: uploads are frequent.
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.decorateRequest('device', null);
  app.decorateRequest('user', null);

  // Fastify's own JSON parser drops the parse error's reason; keep it, a client needs it.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(new CloudError('BAD_REQUEST', 'the request body is empty; a JSON object was expected'));
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new CloudError('BAD_REQUEST', `the request body is not valid JSON: ${(err as Error).message}`));
    }
  });

  app.setErrorHandler((err, req, reply) => {
    const body = toErrorBody(err);
    if (body.statusCode >= 500) req.log.error({ err }, 'request failed');
    else req.log.debug({ code: body.code, url: req.url }, body.message);
    return reply.status(body.statusCode).type('application/json').send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send(errorBody(404, 'NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`)),
  );
  app.addHook('onResponse', async (req, reply) => {
    if (reply.statusCode >= 400) req.log.info({ method: req.method, url: req.routeOptions.url, status: reply.statusCode }, 'request refused');
  });

  app.get('/healthz', async () => ({ ok: true }));
  await app.register(deviceApi, { prefix: '/v1', ctx });
  // People-facing (a dashboard session or the admin token), next to the device API it streams from.
  await app.register(eventStreamRoutes, { prefix: '/v1', ctx });
  await app.register(adminApi, { prefix: '/admin/v1', ctx });
  if (ctx.folder) await app.register(objectRoutes, { ctx, folder: ctx.folder });
  await app.register(dashboardRoutes, { ctx });
  await app.register(dashboardLiveRoutes, { ctx });
  return app;
}
