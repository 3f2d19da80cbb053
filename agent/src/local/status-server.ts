// The status page's HTTP server (docs/agent.md, "The status page"): for the technician on the
// site's LAN, behind the device's setup PIN. A part of the supervision tree like the heartbeat,
// but it never crashes it: a port that is taken, or a PIN that cannot be stored, is logged and
// tried again later. Nothing here runs on the capture path: the page reads what the agent's
// parts already know (status-view.ts) and scales thumbnails only when asked (thumbnails.ts).
//
// Routes (all but /login need a session cookie, got by POSTing the PIN to /login):
//   GET  /                      the status page (a browser without a session goes to /login)
//   GET  /login, POST /login    the PIN form; 401 for a wrong PIN, 429 + Retry-After when locked
//   POST /logout
//   POST /claim                 a claim code, when the device has no valid token
//   GET  /api/status            the page's facts as JSON (401 without a session)
//   GET  /thumbnails/<camera>.jpg
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { backoffDelay } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { errorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Service } from '../lib/service.js';
import { CONTENT_SECURITY_POLICY, loginPage, messagePage, statusPage } from './pages.js';
import { PinLockout } from './pin-lockout.js';
import { SESSION_COOKIE, SESSION_TTL_MS, Sessions } from './sessions.js';
import type { AuthView, StatusReader } from './status-view.js';
import type { Thumbnails } from './thumbnails.js';

/** Requests are forms of a few fields. */
export const LOCAL_BODY_LIMIT_BYTES = 4_096;
/** A claim code as the dashboard shows it (12 Crockford letters in groups), with room for typing. */
export const CLAIM_CODE_FORM_RE = /^[A-Za-z0-9][A-Za-z0-9 -]{2,62}[A-Za-z0-9]$/;
/** How long a stopping server waits for its requests before it cuts the connections. */
export const LOCAL_CLOSE_TIMEOUT_MS = 2_000;

export interface LocalStatusServerOptions {
  host: string;
  port: number;
  /** vigil-XXXX, shown on the login page (the name the technician typed). */
  hostName: string;
  /** The setup PIN (SetupPin.get): loaded, or made and stored, before the server listens. */
  pin: () => Promise<string>;
  status: StatusReader;
  thumbnails: Thumbnails;
  auth: AuthView;
  clock: Clock;
  log: Logger;
}

/** PINs compared in constant time: hashed first, so their lengths leak nothing either. */
export function samePin(given: string, pin: string): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(given), h(pin));
}

const NOTICES: Record<string, { good: boolean; text: string }> = {
  'claim-sent': { good: true, text: 'Claim code sent: the claim state below shows what the cloud answers (a few seconds).' },
};

export class LocalStatusServer implements Service {
  readonly sessions: Sessions;
  readonly lockout: PinLockout;
  #address: AddressInfo | null = null;

  constructor(private readonly o: LocalStatusServerOptions) {
    this.sessions = new Sessions(o.clock);
    this.lockout = new PinLockout(o.clock);
  }

  /** Where it listens; null while it does not. */
  get address(): AddressInfo | null {
    return this.#address;
  }

  async start(signal: AbortSignal): Promise<void> {
    const { log, clock } = this.o;
    for (let attempt = 1; !signal.aborted; attempt++) {
      let app: FastifyInstance | undefined;
      try {
        const pin = await this.o.pin();
        app = await this.build(pin);
        await app.listen({ host: this.o.host, port: this.o.port, signal });
        this.#address = app.server.address() as AddressInfo;
        log.info({ host: this.#address.address, port: this.#address.port }, 'status page listening');
        await new Promise<void>((resolve) => {
          if (signal.aborted) return resolve();
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
        return;
      } catch (err) {
        if (signal.aborted) return;
        const wait = backoffDelay(attempt);
        // EADDRINUSE: another program has the port (a second agent on a laptop); EACCES: a port below 1024 without root
        log.error({ code: errorCode(err), err: (err as Error).message, host: this.o.host, port: this.o.port, retryInMs: wait }, 'status page cannot start; trying again');
        await clock.sleep(wait, signal);
      } finally {
        this.#address = null;
        // `listen`'s signal closes the server on abort; close() also ends keep-alive connections.
        if (app) await closeWithin(app, LOCAL_CLOSE_TIMEOUT_MS);
      }
    }
  }

  /** The app, without listening (tests inject requests into it). */
  async build(pin: string): Promise<FastifyInstance> {
    const { log } = this.o;
    const app = Fastify({ logger: false, bodyLimit: LOCAL_BODY_LIMIT_BYTES, forceCloseConnections: true, return503OnClosing: true });
    await app.register(fastifyCookie);
    await app.register(fastifyFormbody);
    app.addHook('onSend', async (_req, reply) => {
      reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
      reply.header('x-frame-options', 'DENY');
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    });
    app.setErrorHandler((err: { statusCode?: number; message: string; code?: string }, req, reply) => {
      const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) log.error({ err: err.message, code: err.code, url: req.url }, 'status page request failed');
      return reply.code(status).type('text/html; charset=utf-8').send(messagePage('Something went wrong', status === 500 ? `The status page failed: ${err.message}` : err.message));
    });
    app.setNotFoundHandler((_req, reply) => reply.code(404).type('text/html; charset=utf-8').send(messagePage('Not found', 'There is no such page on this device.')));

    const session = (req: FastifyRequest): string | undefined => {
      const id = req.cookies[SESSION_COOKIE];
      return this.sessions.valid(id) ? id : undefined;
    };
    const html = (reply: FastifyReply, code: number, body: string): FastifyReply => reply.code(code).type('text/html; charset=utf-8').send(body);
    const hostName = (): string => this.o.hostName;

    app.get('/login', async (req, reply) => (session(req) ? reply.redirect('/', 303) : html(reply, 200, loginPage({ hostName: hostName() }))));

    app.post('/login', async (req, reply) => {
      const given = String((req.body as Record<string, unknown> | undefined)?.pin ?? '').replace(/\s/g, '');
      const v = this.lockout.attempt(() => samePin(given, pin));
      if (v.ok) {
        const id = this.sessions.create();
        log.info({ remote: req.ip }, 'status page: setup PIN accepted');
        reply.setCookie(SESSION_COOKIE, id, { path: '/', httpOnly: true, sameSite: 'strict', maxAge: SESSION_TTL_MS / 1000 });
        return reply.redirect('/', 303);
      }
      if (v.locked) {
        const s = Math.ceil(v.retryAfterMs / 1000);
        log.warn({ remote: req.ip, failures: v.failures, lockedForS: s }, 'status page: setup PIN form locked after wrong PINs');
        reply.header('retry-after', String(s));
        return html(reply, 429, loginPage({ hostName: hostName(), error: `Too many wrong PINs: the form is locked. Try again in ${formatWait(s)}.` }));
      }
      log.warn({ remote: req.ip, failures: v.failures }, 'status page: wrong setup PIN');
      return html(
        reply,
        401,
        loginPage({ hostName: hostName(), error: `Wrong PIN. ${v.remaining} more ${v.remaining === 1 ? 'try' : 'tries'} before the form locks for a while.` }),
      );
    });

    app.post('/logout', async (req, reply) => {
      this.sessions.end(req.cookies[SESSION_COOKIE]);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.redirect('/login', 303);
    });

    // Everything below needs a session.
    app.register(async (inner) => {
      inner.addHook('onRequest', async (req, reply) => {
        if (session(req)) return;
        if (req.method === 'GET' && req.url.split('?')[0] === '/') return reply.redirect('/login', 303);
        return reply.code(401).type('application/json').send({ error: { code: 'SESSION_REQUIRED', message: 'log in with the setup PIN first (POST /login)' } });
      });

      inner.get('/', async (req, reply) => {
        const notice = NOTICES[String((req.query as Record<string, unknown>).notice ?? '')];
        return html(reply, 200, statusPage(await this.o.status.read(), { notice }));
      });

      inner.get('/api/status', async () => this.o.status.read());

      inner.get<{ Params: { file: string } }>('/thumbnails/:file', async (req, reply) => {
        const m = /^(.+)\.jpg$/.exec(req.params.file);
        if (!m) return reply.code(404).type('text/plain; charset=utf-8').send('not a thumbnail');
        const thumb = await this.o.thumbnails.get(m[1]!);
        if (!thumb) return reply.code(404).type('text/plain; charset=utf-8').send('no picture yet from this camera');
        // The page asks with ?at=<capture time>: a new frame is a new URL.
        reply.header('cache-control', 'private, max-age=300');
        reply.header('last-modified', new Date(thumb.capturedAt).toUTCString());
        return reply.type('image/jpeg').send(thumb.jpeg);
      });

      inner.post('/claim', async (req, reply) => {
        const code = String((req.body as Record<string, unknown> | undefined)?.code ?? '').trim();
        const view = async (text: string, status: number) => html(reply, status, statusPage(await this.o.status.read(), { notice: { good: false, text } }));
        if (typeof this.o.auth.submitClaimCode !== 'function') return view('This agent cannot take claim codes from this page; use "vigil-agent claim --code CODE".', 503);
        if (this.o.auth.state === 'valid') return view('This device already has a valid token: no claim code needed.', 409);
        if (!CLAIM_CODE_FORM_RE.test(code)) return view('That is not a claim code: it is the letters and digits the Vigil dashboard shows (for example ABCD-EFGH-JKMN).', 400);
        this.o.auth.submitClaimCode(code);
        log.info({ remote: req.ip }, 'status page: claim code entered');
        this.o.status.invalidate();
        return reply.redirect('/?notice=claim-sent', 303);
      });
    });
    await app.ready();
    return app;
  }
}

function formatWait(s: number): string {
  if (s < 60) return `${s} seconds`;
  const min = Math.ceil(s / 60);
  return `${min} minute${min === 1 ? '' : 's'}`;
}

async function closeWithin(app: FastifyInstance, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    app.close().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
