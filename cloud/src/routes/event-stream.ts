import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { peopleAuth } from '../auth.js';
import type { AppContext } from '../context.js';
import { CloudError } from '../errors.js';
import type { StreamMessage } from '../store/event-types.js';
import { eventView } from './events.js';

// GET /v1/events/stream: the live stream, as Server-Sent Events. Every message carries the
// sequence number of its row in the stream log as its SSE id, in commit order. A client that
// reconnects with Last-Event-ID (browsers' EventSource sends it by itself) gets every message
// after that id from the database, once and in order, then the live ones — whichever process
// wrote them. Without one, a client starts at the present (or, with ?since=N, after N).
//
// Messages: `event` (a scene event, as GET /admin/v1/events/:id shows it) and `alert.opened`,
// `alert.escalated`, `alert.acknowledged`, `alert.renotified`, `alert.diagnosed`, `alert.closed`
// ({alert}). `reset` says the messages after the client's id are no longer kept (older than the
// retention): reload, then carry on from this message's id.

/** Messages sent per database read. */
const PAGE = 200;
/** With nothing new, look at the database anyway this often (another process may have written). */
export const STREAM_POLL_MS = 2_000;
/** A comment line this often keeps proxies from closing an idle stream. */
export const STREAM_KEEPALIVE_MS = 15_000;

export const eventStreamRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const open = new Set<AbortController>();
  // Streams never end by themselves: close() ends them rather than waiting for its deadline.
  app.addHook('preClose', async () => {
    for (const c of open) c.abort();
  });

  app.get<{ Querystring: { since?: number } }>(
    '/events/stream',
    {
      onRequest: peopleAuth(ctx),
      schema: { querystring: { type: 'object', properties: { since: { type: 'integer', minimum: 0 } } } },
    },
    async (req, reply) => {
      const after = await startingPoint(ctx, req);
      const stop = new AbortController();
      open.add(stop);
      req.raw.on('close', () => stop.abort());
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        // nginx and friends buffer responses unless told not to.
        'x-accel-buffering': 'no',
      });
      // The client reconnects after this long when the connection drops.
      reply.raw.write('retry: 3000\n\n');
      try {
        await pump(ctx, reply, after, stop.signal);
      } catch (err) {
        if (!stop.signal.aborted) req.log.warn({ err }, 'event stream ended by an error');
      } finally {
        open.delete(stop);
        reply.raw.end();
      }
    },
  );
};

/** The seq to send after: Last-Event-ID, else ?since, else the newest (only what comes next). */
async function startingPoint(ctx: AppContext, req: FastifyRequest<{ Querystring: { since?: number } }>): Promise<number> {
  const header = req.headers['last-event-id'];
  const lastId = Array.isArray(header) ? header[0] : header;
  if (lastId !== undefined && lastId !== '') {
    if (!/^\d{1,15}$/.test(lastId)) throw new CloudError('BAD_REQUEST', `Last-Event-ID must be a sequence number this stream sent (got ${JSON.stringify(lastId.slice(0, 40))})`);
    return Number(lastId);
  }
  if (req.query.since !== undefined) return req.query.since;
  return (await ctx.store.events.streamBounds()).last;
}

async function pump(ctx: AppContext, reply: FastifyReply, after: number, signal: AbortSignal): Promise<void> {
  const { events } = ctx.store;
  let last = after;
  const bounds = await events.streamBounds();
  if (bounds.first !== null && last < bounds.first - 1) {
    write(reply, { seq: bounds.first - 1, type: 'reset', payload: JSON.stringify({ reason: `messages after ${last} are no longer kept`, resumeAfter: bounds.first - 1 }), createdAt: ctx.now() });
    last = bounds.first - 1;
  }
  let wake: () => void = () => undefined;
  const unsubscribe = ctx.changes.subscribe(() => wake());
  let lastWrite = Date.now();
  try {
    while (!signal.aborted) {
      const page = await events.streamAfter(last, PAGE);
      for (const m of page) {
        if (signal.aborted) return;
        const ok = write(reply, await resolve(ctx, m));
        last = m.seq;
        lastWrite = Date.now();
        if (!ok) await new Promise<void>((r) => reply.raw.once('drain', () => r()).once('close', () => r()));
      }
      if (page.length === PAGE) continue;
      if (Date.now() - lastWrite >= STREAM_KEEPALIVE_MS) {
        reply.raw.write(': keep-alive\n\n');
        lastWrite = Date.now();
      }
      // Real time, not the cloud's clock: this is about sockets, not schedules.
      await new Promise<void>((resolveWait) => {
        const timer = setTimeout(done, STREAM_POLL_MS);
        function done(): void {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolveWait();
        }
        wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    unsubscribe();
  }
}

/** An `event` message names its event; the client gets the event as the API shows it. */
async function resolve(ctx: AppContext, m: StreamMessage): Promise<StreamMessage> {
  if (m.type !== 'event') return m;
  const { eventId } = JSON.parse(m.payload) as { eventId: string };
  const e = await ctx.store.events.getEvent(eventId);
  return e ? { ...m, payload: JSON.stringify(eventView(e)) } : m;
}

function write(reply: FastifyReply, m: StreamMessage): boolean {
  // JSON has no raw newlines, so the payload is one data line.
  return reply.raw.write(`id: ${m.seq}\nevent: ${m.type}\ndata: ${m.payload}\n\n`);
}
