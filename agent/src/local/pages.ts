// The status page's HTML: rendered on the server from the StatusView, no build step, no files,
// readable on a phone. One inline style and one inline script, both allowed by their hash in
// the Content-Security-Policy (nothing else may run, load or frame the page).
import { createHash } from 'node:crypto';
import type { Finding, Level } from '../doctor/findings.js';
import { formatDuration } from '../doctor/findings.js';
import type { CameraLevel, CameraLine, StatusView } from './status-view.js';

/** How often an open status page reloads itself. */
export const PAGE_REFRESH_MS = 5_000;

const STYLE = `
body{font:16px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:.75rem;color:#222;background:#fafafa}
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .4rem;border-bottom:1px solid #ccc}
.sub{color:#555;margin:0 0 .5rem}.msg{padding:.6rem;border-radius:.3rem;margin:.6rem 0}
.msg.bad{background:#fde2e1;border:1px solid #d33}.msg.good{background:#e3f6e3;border:1px solid #393}
table{border-collapse:collapse;width:100%}td,th{text-align:left;vertical-align:top;padding:.25rem .4rem;border-bottom:1px solid #eee}
th{width:9rem;color:#555;font-weight:normal}.lv{font-weight:bold;font-size:.8rem;padding:.05rem .35rem;border-radius:.2rem;color:#fff}
.ok{background:#2a7d2a}.warn,.waiting{background:#b36b00}.fail,.failing{background:#c62828}.skip,.stopped{background:#666}
.todo{color:#444;font-size:.9rem}.cams{display:flex;flex-wrap:wrap;gap:.75rem}
.cam{background:#fff;border:1px solid #ddd;border-radius:.3rem;padding:.5rem;width:20.5rem;max-width:100%}
.cam img{display:block;max-width:100%;height:auto;margin-top:.4rem}
.noframe{margin-top:.4rem;height:8rem;display:flex;align-items:center;justify-content:center;background:#eee;color:#555;text-align:center;padding:.5rem}
input,button{font-size:1.1rem;padding:.4rem .6rem}input{width:12rem;max-width:100%}form{margin:.5rem 0}
.foot{color:#666;font-size:.85rem;margin-top:1.5rem}`;

// Reloads unless the technician is typing a claim code.
const SCRIPT = `setInterval(function(){var i=document.getElementById('code');if(i&&(i.value||document.activeElement===i))return;location.reload()},${PAGE_REFRESH_MS});`;

const hash = (s: string): string => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/** Sent with every page. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "img-src 'self'",
  `style-src ${hash(STYLE)}`,
  `script-src ${hash(SCRIPT)}`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(title: string, body: string, refresh: boolean): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>${body}${refresh ? `<script>${SCRIPT}</script>` : ''}</body></html>`;
}

export interface LoginPageOptions {
  hostName: string;
  /** Why the last attempt failed (wrong PIN, locked), shown above the form. */
  error?: string | undefined;
}

export function loginPage(o: LoginPageOptions): string {
  return layout(
    `Vigil ${o.hostName}: setup PIN`,
    `<h1>Vigil device ${escapeHtml(o.hostName)}</h1>
<p class="sub">Enter this device's setup PIN: 8 digits, on the device label and in the Vigil dashboard (the device's page).</p>
${o.error ? `<p class="msg bad" id="error" role="alert">${escapeHtml(o.error)}</p>` : ''}
<form method="post" action="/login"><label for="pin">Setup PIN</label><br>
<input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="off" pattern="[0-9]*" maxlength="8" required autofocus>
<button type="submit">Open</button></form>`,
    false,
  );
}

const LABEL: Record<Level | CameraLevel, string> = { ok: 'OK', warn: 'WARN', fail: 'FAIL', skip: 'SKIP', waiting: 'WAITING', failing: 'FAILING', stopped: 'STOPPED' };
const badge = (l: Level | CameraLevel): string => `<span class="lv ${l}">${LABEL[l]}</span>`;

function ago(at: number | null, now: number): string {
  if (at === null) return 'never';
  return `${formatDuration(Math.max(0, now - at))} ago (${new Date(at).toISOString().replace('T', ' ').slice(0, 19)} UTC)`;
}

function findingRow(f: Finding): string {
  return `<tr data-check="${escapeHtml(f.check)}"><th>${escapeHtml(f.check.replace('_', ' '))}</th><td>${badge(f.level)} ${escapeHtml(f.fact)}${f.todo ? `<div class="todo">→ ${escapeHtml(f.todo)}</div>` : ''}</td></tr>`;
}

function camera(c: CameraLine, now: number): string {
  const title = c.name !== c.camera ? `${c.name} (${c.camera})` : c.camera;
  const picture =
    c.thumbnailAt === null
      ? `<div class="noframe">No picture yet: this camera has not given a frame since the agent started.</div>`
      : `<img src="/thumbnails/${encodeURIComponent(c.camera)}.jpg?at=${c.thumbnailAt}" alt="latest frame of ${escapeHtml(title)}">`;
  return `<div class="cam" data-camera="${escapeHtml(c.camera)}"><b>${escapeHtml(title)}</b> ${badge(c.level)}
<div>last capture: ${escapeHtml(ago(c.lastCaptureAt, now))}${c.intervalMs ? `, every ${escapeHtml(formatDuration(c.intervalMs))}` : ''}</div>
<div>${c.capturesOk} captured, ${c.failures} failed</div>
${c.lastError ? `<div class="todo">last error: ${escapeHtml(c.lastError)}</div>` : ''}${picture}</div>`;
}

export interface StatusPageOptions {
  /** After a form was sent: what happened (a claim code was queued, or refused as malformed). */
  notice?: { good: boolean; text: string } | undefined;
}

export function statusPage(v: StatusView, o: StatusPageOptions = {}): string {
  const claim = v.auth.claim;
  const claimLine =
    claim && claim.state !== 'idle'
      ? `<p class="msg ${claim.state === 'refused' ? 'bad' : claim.state === 'claimed' ? 'good' : ''}" id="claim-state">claim code (from the ${escapeHtml(claim.source)}): ${escapeHtml(claim.state)}${
          claim.reason ? `: ${escapeHtml(claim.reason)}` : ''
        }${claim.advice ? ` — ${escapeHtml(claim.advice)}` : ''}</p>`
      : '';
  const form = v.auth.canClaim
    ? `<form method="post" action="/claim" id="claim-form"><label for="code">Claim code from the Vigil dashboard</label><br>
<input id="code" name="code" autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="64" required>
<button type="submit">Claim this device</button></form>`
    : '';
  const d = v.device;
  const cams = v.cameras.length ? `<div class="cams">${v.cameras.map((c) => camera(c, v.at)).join('\n')}</div>` : '<p>No cameras: none in the config file and none found on the network yet.</p>';
  return layout(
    `Vigil ${d.hostName}`,
    `<h1>${escapeHtml(d.name)}</h1><p class="sub">host ${escapeHtml(d.hostName)} · agent ${escapeHtml(d.agentVersion)}</p>
${o.notice ? `<p class="msg ${o.notice.good ? 'good' : 'bad'}" id="notice" role="status">${escapeHtml(o.notice.text)}</p>` : ''}
<h2>Cloud</h2><table>
<tr><th>cloud</th><td>${escapeHtml(v.cloudUrl)}</td></tr>
${findingRow(v.token)}
<tr><th>token state</th><td id="auth-state">${escapeHtml(v.auth.state)}: ${escapeHtml(v.auth.reason)}</td></tr>
</table>${claimLine}${form}
<h2>Cameras</h2>${cams}
<h2>Device</h2><table>
<tr><th>hardware id</th><td>${escapeHtml(d.hardwareId)}</td></tr>
${d.uptimeS !== null ? `<tr><th>up for</th><td>${escapeHtml(formatDuration(d.uptimeS * 1000))}</td></tr>` : ''}
${v.checks.map(findingRow).join('\n')}
</table>
<p class="foot">Read at ${escapeHtml(new Date(v.at).toISOString().replace('T', ' ').slice(0, 19))} UTC; this page refreshes every ${PAGE_REFRESH_MS / 1000} s.
The same facts as JSON: <a href="/api/status">/api/status</a>.</p>
<form method="post" action="/logout"><button type="submit">Log out</button></form>`,
    true,
  );
}

export function messagePage(title: string, text: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p class="msg bad" role="alert">${escapeHtml(text)}</p><p><a href="/">Back to the status page</a></p>`, false);
}
