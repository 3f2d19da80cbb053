// The dashboard's shared page frame and formatting. Server-rendered HTML (plus one small script,
// dashboard/live-script.ts, for live updates, which writes data only as text): every value from
// a device or a person goes through esc().

/** The login form; `next` is where a successful login goes (a local path, checked again on POST). */
export function loginForm(o: { next?: string; user?: string; error?: string } = {}): string {
  return (
    (o.error ? `<p class="bad" role="alert">${esc(o.error)}</p>` : '') +
    '<form method="post" action="/login" class="login">' +
    `<label>User <input name="user" value="${esc(o.user ?? '')}" autocomplete="username" autocapitalize="none" autocorrect="off" spellcheck="false" required${o.user ? '' : ' autofocus'}></label>` +
    `<label>Password <input name="password" type="password" autocomplete="current-password" required${o.user ? ' autofocus' : ''}></label>` +
    (o.next ? `<input type="hidden" name="next" value="${esc(o.next)}">` : '') +
    '<button>Log in</button></form>'
  );
}

const LOGOUT = '<form method="post" action="/logout" class="logout"><button>Log out</button></form>';
const NAV =
  '<nav><a href="/">Overview</a> · <a href="/devices">Devices</a> · <a href="/cameras">Cameras</a> · <a href="/events">Events</a> · <a href="/alerts">Alerts</a> · <a href="/firmware">Firmware</a></nav>';

export function page(title: string, body: string, o: { nav?: boolean } = {}): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.thumbs{display:flex;gap:.5em;flex-wrap:wrap}figure{margin:0}img{width:240px;height:auto;display:block;background:#eee}figcaption{font-size:12px;color:#666}small{color:#666;font-weight:normal}
nav{margin-bottom:1em}form.logout{float:right}
.login{display:flex;flex-direction:column;gap:.8em;max-width:20em}.login label{display:flex;flex-direction:column;gap:.2em}.login input,.login button{font-size:16px;padding:.5em}
.open{color:#b00;font-weight:bold}.bad{color:#b00}.warn{color:#a60}.ok{color:#070}pre{white-space:pre-wrap;max-width:60em;font-size:12px}
@media (max-width:700px){body{margin:.5em}table{display:block;overflow-x:auto}}
</style></head><body>${o.nav === false ? '' : LOGOUT}<h1>Vigil</h1>${o.nav === false ? '' : NAV}${body}</body></html>`;
}

export function time(ms: number | null): string {
  return ms === null ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}

/** "3 min ago" relative to `now`, with the exact time on hover. */
export function ago(ms: number | null, now: number): string {
  if (ms === null) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  const text = s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : s < 86_400 ? `${Math.floor(s / 3600)} h ago` : `${Math.floor(s / 86_400)} d ago`;
  return `<span title="${time(ms)}">${text}</span>`;
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
