import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { AppContext } from '../context.js';
import { OBJECTS_PATH, type FolderStore } from '../objects/folder-store.js';
import type { ExpectedObject } from '../objects/types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** What a verified presigned URL allows to be PUT (set by the objects route's onRequest). */
    expectedObject: ExpectedObject | null;
  }
}

/**
 * PUT /objects/<key>?bytes=&sha256=&exp=&sig= — the embedded object store's presigned uploads.
 * No bearer token: the signature is the authority, as with S3. Every check that needs no body
 * runs in onRequest, before a byte is read; the body is then streamed, never buffered.
 */
export const objectRoutes: FastifyPluginAsync<{ ctx: AppContext; folder: FolderStore }> = async (app, { ctx, folder }) => {
  app.decorateRequest('expectedObject', null);
  // Leave the body unread for the handler to stream (Fastify would otherwise buffer it).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  const keyOf = (req: FastifyRequest) => (req.params as { '*': string })['*'];

  app.put(
    `${OBJECTS_PATH}*`,
    {
      onRequest: async (req) => {
        const h = req.headers['content-length'];
        req.expectedObject = folder.authorizePut(
          {
            key: keyOf(req),
            query: req.query as Record<string, unknown>,
            contentLength: h === undefined ? undefined : Number(h),
            contentType: req.headers['content-type'],
          },
          ctx.now(),
        );
      },
    },
    async (req, reply) => {
      const expected = req.expectedObject!;
      try {
        const stat = await folder.receivePut(keyOf(req), expected, req.raw as Readable);
        return reply.status(200).send({ bytes: stat.bytes, sha256: stat.sha256 });
      } catch (err) {
        // Refused mid-body. With a Content-Length (already checked against the limit) the rest
        // is read and dropped, so the client gets the answer on a clean connection; an
        // unbounded chunked body is cut off instead.
        if (!req.raw.complete) {
          if (req.headers['content-length'] !== undefined) req.raw.resume();
          else void reply.header('connection', 'close');
        }
        throw err;
      }
    },
  );
};
