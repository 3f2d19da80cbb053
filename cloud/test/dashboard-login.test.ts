import t from 'tap';
import Fastify from 'fastify';
import { adminAuth, peopleAuth, sameOriginOnly } from '../src/auth.js';
import { toErrorBody } from '../src/http-errors.js';
import { localPath } from '../src/routes/dashboard.js';
import { disableUser } from '../src/users/user-admin.js';
import { SESSION_TTL_MS } from '../src/users/sessions.js';
import { addDashboardUser, DASHBOARD_PASSWORD, DASHBOARD_USER, http, loginDashboard, startTestCloud, type TestCloud } from './helpers.js';

// The dashboard's login on a real cloud (fake clock): the form, the session cookie, where a
// login leads, logout, expiry, disabled users, the lockout over HTTP and the same-origin rule;
// then peopleAuth and adminAuth on a small app of their own.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

function postLogin(cloud: TestCloud, fields: Record<string, string>, headers: Record<string, string> = {}) {
  return http(cloud.url, 'POST', '/login', { body: new URLSearchParams(fields).toString(), headers: { ...FORM, ...headers } });
}

function sessionOf(setCookie: unknown): string {
  const m = /^(vigil_session=[^;]*)/.exec(String(setCookie ?? ''));
  if (!m) throw new Error(`no session cookie in ${String(setCookie)}`);
  return m[1]!;
}

t.test('a page without a login leads to /login and, after it, back to the page', async (t) => {
  const cloud = await startTestCloud(t);
  await addDashboardUser(cloud, 'ana');

  const anon = await http(cloud.url, 'GET', '/cameras?device=dev_1');
  t.equal(anon.status, 303);
  t.equal(anon.headers.location, '/login?next=%2Fcameras%3Fdevice%3Ddev_1');

  const form = await http(cloud.url, 'GET', anon.headers.location as string);
  t.equal(form.status, 200);
  t.equal(form.headers['cache-control'], 'no-store');
  const html = form.raw.toString();
  t.match(html, /<form method="post" action="\/login" class="login">/);
  t.match(html, /<input name="user" value="" autocomplete="username" autocapitalize="none"/);
  t.match(html, /<input name="password" type="password" autocomplete="current-password"/);
  t.match(html, /<input type="hidden" name="next" value="\/cameras\?device=dev_1">/);
  t.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/, 'usable on a phone');
  t.notMatch(html, /<nav>|Log out/, 'no navigation before the login');

  const res = await postLogin(cloud, { user: 'ANA', password: DASHBOARD_PASSWORD, next: '/cameras?device=dev_1' });
  t.equal(res.status, 303);
  t.equal(res.headers.location, '/cameras?device=dev_1');
  const setCookie = String(res.headers['set-cookie']);
  t.match(setCookie, /^vigil_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=604800$/, 'HttpOnly, SameSite=Strict, 7 days, not Secure on http');
  const cookie = sessionOf(setCookie);

  const page = await http(cloud.url, 'GET', '/cameras?device=dev_1', { headers: { cookie } });
  t.equal(page.status, 200);
  t.match(page.raw.toString(), /<form method="post" action="\/logout" class="logout"><button>Log out<\/button><\/form>/);
  t.match(page.raw.toString(), /<a href="\/events">Events<\/a>/);
  const again = await http(cloud.url, 'GET', '/login?next=%2Fdevices', { headers: { cookie } });
  t.equal(again.headers.location, '/devices', 'already logged in: straight on');
});

t.test('wrong or unknown: 401 with the form again and no cookie; an empty form too', async (t) => {
  const cloud = await startTestCloud(t);
  await loginDashboard(cloud, t);
  const wrong = await postLogin(cloud, { user: DASHBOARD_USER, password: 'not the password', next: '/alerts' });
  t.equal(wrong.status, 401);
  t.notOk(wrong.headers['set-cookie']);
  const html = wrong.raw.toString();
  t.match(html, /<p class="bad" role="alert">Wrong user name or password\.<\/p>/);
  t.match(html, /<input name="user" value="admin"/, 'the name is kept');
  t.match(html, /name="next" value="\/alerts"/, 'and where to go');
  const unknown = await postLogin(cloud, { user: 'nobody', password: 'not the password', next: '/alerts' });
  t.equal(unknown.status, 401);
  t.equal(unknown.raw.toString().replace('value="nobody"', 'value="admin"'), html, 'an unknown name gets the same page');
  t.equal((await postLogin(cloud, {})).status, 401);
  t.equal((await http(cloud.url, 'POST', '/login')).status, 401, 'no body at all');
});

t.test('after logging in, only a local path: another site or the login pages lead to /', async (t) => {
  const cloud = await startTestCloud(t);
  await loginDashboard(cloud);
  for (const next of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', '/\t/evil.example', 'javascript:alert(1)', '/login', '/logout', '']) {
    const res = await postLogin(cloud, { user: DASHBOARD_USER, password: DASHBOARD_PASSWORD, next });
    t.equal(res.headers.location, '/', `next=${JSON.stringify(next)}`);
  }
  const table: [unknown, string][] = [
    ['/firmware', '/firmware'],
    ['/cameras?device=a%20b', '/cameras?device=a%20b'],
    ['/a/../devices', '/devices'],
    ['/x#frag', '/x'],
    [undefined, '/'],
    [['/devices'], '/'],
    ['devices', '/'],
    ['/%2F%2Fevil.example', '/%2F%2Fevil.example'],
  ];
  for (const [given, want] of table) t.equal(localPath(given), want, `localPath(${JSON.stringify(given)})`);
});

t.test('logout ends the session; sessions expire after 7 days; a disabled user is out at once', async (t) => {
  const cloud = await startTestCloud(t);
  const a = await loginDashboard(cloud);
  const out = await http(cloud.url, 'POST', '/logout', { headers: { cookie: a } });
  t.equal(out.status, 303);
  t.equal(out.headers.location, '/login');
  t.match(String(out.headers['set-cookie']), /^vigil_session=; HttpOnly; SameSite=Strict; Path=\/; Max-Age=0$/, 'the cookie is cleared');
  t.equal((await http(cloud.url, 'GET', '/', { headers: { cookie: a } })).status, 303, 'the old cookie no longer works');
  t.equal((await http(cloud.url, 'POST', '/logout')).status, 303, 'logging out without a session is harmless');

  const b = await loginDashboard(cloud);
  await cloud.clock.advance(SESSION_TTL_MS - 1000);
  t.equal((await http(cloud.url, 'GET', '/', { headers: { cookie: b } })).status, 200, 'a day before the end: in');
  await cloud.clock.advance(1000);
  const expired = await http(cloud.url, 'GET', '/devices', { headers: { cookie: b } });
  t.equal(expired.status, 303, 'after 7 days: back to the login');
  t.equal(expired.headers.location, '/login?next=%2Fdevices');

  const c = await loginDashboard(cloud);
  const post = await http(cloud.url, 'POST', '/devices/new', { body: 'site=Depot', headers: { ...FORM, cookie: 'vigil_session=forged' } });
  t.equal(post.status, 401, 'a POST without a valid session: 401');
  t.match(post.raw.toString(), /action="\/login"/, 'with the login form');
  await disableUser(cloud.store.users, DASHBOARD_USER, cloud.clock.now());
  t.equal((await http(cloud.url, 'GET', '/', { headers: { cookie: c } })).status, 303, 'disabled: the session is gone');
  t.equal((await postLogin(cloud, { user: DASHBOARD_USER, password: DASHBOARD_PASSWORD })).status, 401, 'and the right password no longer logs in');
});

t.test('5 wrong passwords lock the user: 429 with Retry-After, doubling, and a good login after the lock', async (t) => {
  const cloud = await startTestCloud(t);
  await loginDashboard(cloud);
  const wrong = () => postLogin(cloud, { user: DASHBOARD_USER, password: 'not the password' });
  for (let i = 1; i <= 4; i++) t.equal((await wrong()).status, 401, `wrong #${i}`);
  const fifth = await wrong();
  t.equal(fifth.status, 429);
  t.equal(fifth.headers['retry-after'], '60');
  t.match(fifth.raw.toString(), /too many wrong passwords: this user is locked, try again in 60 s/);

  await cloud.clock.advance(59_000);
  const right = await postLogin(cloud, { user: DASHBOARD_USER, password: DASHBOARD_PASSWORD });
  t.equal(right.status, 429, 'the right password waits for the lock too');
  t.equal(right.headers['retry-after'], '1');
  t.notOk(right.headers['set-cookie']);

  await cloud.clock.advance(1000);
  const sixth = await wrong();
  t.equal(sixth.headers['retry-after'], '120', 'one more wrong password after the lock: twice as long');
  await cloud.clock.advance(120_000);
  t.equal((await postLogin(cloud, { user: DASHBOARD_USER, password: DASHBOARD_PASSWORD })).status, 303);
  t.equal((await wrong()).status, 401, 'a good login starts the count again');
});

t.test('cross-site POSTs are refused; same-site ones pass', async (t) => {
  const cloud = await startTestCloud(t);
  const cookie = await loginDashboard(cloud);
  const self = `http://127.0.0.1:${cloud.port}`;
  const post = (headers: Record<string, string>) => http(cloud.url, 'POST', '/devices/new', { body: 'site=Depot&ttl=3600', headers: { ...FORM, cookie, ...headers } });

  const refused: Record<string, string>[] = [{ origin: 'http://evil.example' }, { origin: 'null' }, { referer: 'http://evil.example/page' }, { origin: `http://127.0.0.1:${cloud.port + 1}` }, { origin: 'not a url' }];
  for (const headers of refused) {
    const res = await post(headers);
    t.equal(res.status, 403, `refused: ${JSON.stringify(headers)}`);
    t.match(res.body, { code: 'CROSS_SITE_REFUSED' });
  }
  t.equal((await post({ origin: self })).status, 200, 'Origin is this server');
  t.equal((await post({ referer: `${self}/devices/new` })).status, 200, 'Referer is this server');
  t.equal((await post({})).status, 200, 'neither header (not a browser form from elsewhere)');
  t.equal((await post({ origin: self, referer: 'http://evil.example/' })).status, 200, 'Origin wins over Referer');

  const login = await postLogin(cloud, { user: DASHBOARD_USER, password: DASHBOARD_PASSWORD }, { origin: 'http://evil.example' });
  t.equal(login.status, 403, 'a login posted from another site (login CSRF)');
  t.notOk(login.headers['set-cookie']);
  t.equal((await http(cloud.url, 'POST', '/logout', { headers: { cookie, origin: 'http://evil.example' } })).status, 403, 'a logout too');
  t.equal((await http(cloud.url, 'GET', '/', { headers: { cookie } })).status, 200, 'and the session lives on');
});

t.test('behind https: a Secure cookie, and the public URL counts as this site', async (t) => {
  const cloud = await startTestCloud(t, { publicUrl: 'https://vigil.example' });
  await addDashboardUser(cloud, 'ana');
  const res = await postLogin(cloud, { user: 'ana', password: DASHBOARD_PASSWORD }, { origin: 'https://vigil.example' });
  t.equal(res.status, 303);
  t.match(String(res.headers['set-cookie']), /; Secure$/);
  t.equal((await postLogin(cloud, { user: 'ana', password: DASHBOARD_PASSWORD }, { origin: 'http://vigil.example' })).status, 403, 'not its http twin');
});

t.test('peopleAuth: a session or the admin token; adminAuth: sessions for reads only', async (t) => {
  const cloud = await startTestCloud(t);
  const cookie = await loginDashboard(cloud);
  const ctx = { store: cloud.store, now: cloud.clock.now, adminToken: cloud.adminToken, config: cloud.config };
  const app = Fastify();
  app.decorateRequest('user', null);
  app.setErrorHandler((err, _req, reply) => {
    const body = toErrorBody(err);
    return reply.status(body.statusCode).send(body);
  });
  await app.register(async (scope) => {
    scope.addHook('onRequest', peopleAuth(ctx));
    scope.addHook('onRequest', sameOriginOnly(ctx));
    scope.get('/people', async (req) => req.user);
    scope.post('/people', async (req) => req.user);
  });
  await app.register(async (scope) => {
    scope.addHook('onRequest', adminAuth(ctx));
    scope.get('/admin', async (req) => req.user);
    scope.post('/admin', async (req) => req.user);
  });
  t.teardown(() => app.close());
  const call = async (method: 'GET' | 'POST', url: string, headers: Record<string, string> = {}) => {
    const res = await app.inject({ method, url, headers });
    return { status: res.statusCode, body: res.json() as unknown };
  };
  const bearer = { authorization: `Bearer ${cloud.adminToken}` };

  t.same(await call('GET', '/people', { cookie }), { status: 200, body: { name: DASHBOARD_USER, via: 'session' } });
  t.same(await call('GET', '/people', bearer), { status: 200, body: { name: 'admin-token', via: 'admin-token' } });
  t.match(await call('GET', '/people'), { status: 401, body: { code: 'SESSION_REQUIRED' } });
  t.match(await call('GET', '/people', { authorization: 'Bearer wrong' }), { status: 401, body: { code: 'SESSION_REQUIRED' } });
  t.match(await call('GET', '/people', { authorization: 'Bearer wrong', cookie }), { status: 401 }, 'a wrong token is not rescued by a cookie');
  t.match(await call('POST', '/people', { cookie, origin: 'http://evil.example' }), { status: 403, body: { code: 'CROSS_SITE_REFUSED' } });
  t.equal((await call('POST', '/people', { cookie, origin: 'http://localhost:80', host: 'localhost:80' })).status, 200);

  t.same(await call('GET', '/admin', { cookie }), { status: 200, body: { name: DASHBOARD_USER, via: 'session' } }, 'reads with the session');
  t.match(await call('POST', '/admin', { cookie }), { status: 401, body: { code: 'ADMIN_TOKEN_INVALID' } }, 'writes need the token');
  t.same(await call('POST', '/admin', bearer), { status: 200, body: { name: 'admin-token', via: 'admin-token' } });
  t.match(await call('GET', '/admin', { cookie: 'vigil_session=forged' }), { status: 401, body: { code: 'ADMIN_TOKEN_INVALID' } });
  await cloud.clock.advance(SESSION_TTL_MS);
  t.match(await call('GET', '/people', { cookie }), { status: 401 }, 'an expired session');
});

