import type { FastifyPluginAsync } from 'fastify';
import { ADMIN_COOKIE, readCookie } from '../auth.js';
import type { AppContext } from '../context.js';
import { safeEqual } from '../lib/ids.js';

const FRAMES_PER_CAMERA = 4;
const COOKIE_MAX_AGE_S = 7 * 86_400;

/**
 * A minimal server-rendered overview at / for people: sites, devices, cameras and their latest
 * frames. No build step, no script. Log in once with /?token=<admin token>: the token moves into
 * an HttpOnly cookie and out of the address bar.
 */
export const dashboardRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const secure = ctx.config.publicUrl?.startsWith('https:') ? '; Secure' : '';

  app.get<{ Querystring: { token?: string } }>('/', async (req, reply) => {
    const given = req.query.token;
    if (typeof given === 'string') {
      if (!safeEqual(given, ctx.adminToken)) return reply.status(401).type('text/html').send(page('Vigil', '<p>Wrong token.</p>' + LOGIN_FORM));
      const cookie = `${ADMIN_COOKIE}=${encodeURIComponent(given)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${COOKIE_MAX_AGE_S}${secure}`;
      return reply.header('set-cookie', cookie).redirect('/', 303);
    }
    const cookie = readCookie(req, ADMIN_COOKIE);
    if (cookie === undefined || !safeEqual(cookie, ctx.adminToken)) return reply.type('text/html').send(page('Vigil', LOGIN_FORM));
    return reply.type('text/html').header('cache-control', 'no-store').send(await renderOverview(ctx));
  });
};

const LOGIN_FORM = '<form method="get" action="/"><label>Admin token <input name="token" type="password" autofocus></label> <button>Log in</button></form>';

async function renderOverview(ctx: AppContext): Promise<string> {
  const { store } = ctx;
  const [sites, devices, cameras] = await Promise.all([store.listSites(), store.listDevices(), store.listCameras()]);
  const deviceRows = devices
    .map(
      (d) =>
        `<tr><td>${esc(d.site)}</td><td>${esc(d.name)}</td><td><code>${esc(d.id)}</code></td><td>${time(d.lastSeenAt)}</td><td>${d.revokedAt ? 'revoked ' + time(d.revokedAt) : 'active'}</td></tr>`,
    )
    .join('');
  const cameraBlocks: string[] = [];
  for (const c of cameras) {
    const frames = await store.listFrames(c.id, { limit: FRAMES_PER_CAMERA, variant: 'compressed' });
    const device = devices.find((d) => d.id === c.deviceId);
    const thumbs = frames
      .map((f) => `<figure><img src="/admin/v1/frames/${encodeURIComponent(f.id)}/image" alt="" loading="lazy"><figcaption>${time(f.capturedAt)}</figcaption></figure>`)
      .join('');
    cameraBlocks.push(
      `<section><h3>${esc(c.name ?? c.key)} <small>${esc(device?.site ?? '')} / ${esc(device?.name ?? c.deviceId)} — ${c.frames} frames, last ${time(c.lastCapturedAt)}</small></h3><div class="thumbs">${thumbs || 'no frames yet'}</div></section>`,
    );
  }
  return page(
    'Vigil',
    `<h2>Sites (${sites.length})</h2><ul>${sites.map((s) => `<li>${esc(s.name)}</li>`).join('')}</ul>
     <h2>Devices (${devices.length})</h2><table><tr><th>site</th><th>name</th><th>id</th><th>last seen</th><th>state</th></tr>${deviceRows}</table>
     <h2>Cameras (${cameras.length})</h2>${cameraBlocks.join('')}`,
  );
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}
.thumbs{display:flex;gap:.5em;flex-wrap:wrap}figure{margin:0}img{width:240px;height:auto;display:block;background:#eee}figcaption{font-size:12px;color:#666}small{color:#666;font-weight:normal}
</style></head><body><h1>Vigil</h1>${body}</body></html>`;
}

function time(ms: number | null): string {
  return ms === null ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
