import type { FastifyInstance } from 'fastify';

/**
 * The dashboard's forms post urlencoded bodies; URLSearchParams reads them into a plain object
 * (one small parser rather than a plugin), in the calling scope only: the APIs stay JSON.
 */
export function acceptFormBodies(app: FastifyInstance): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
}
