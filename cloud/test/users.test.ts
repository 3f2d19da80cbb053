import t, { type Test } from 'tap';
import { join } from 'node:path';
import { testDatabaseUrl } from '../../test/helpers/postgres.js';
import { sha256Hex } from '../src/lib/ids.js';
import { PgStore } from '../src/store/pg-store.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import type { CloudStore } from '../src/store/types.js';
import { checkNewPassword, DEFAULT_SCRYPT, hashPassword, verifyPassword, type ScryptParams } from '../src/users/passwords.js';
import { endSession, SESSION_TTL_MS, startSession, userOfSession } from '../src/users/sessions.js';
import { addUser, disableUser, setUserPassword } from '../src/users/user-admin.js';
import { FIRST_LOCK_MS, lockedUntil, LoginLockedError, MAX_LOCK_MS, UserLogin } from '../src/users/user-login.js';
import { fakeClock, tempDir } from './helpers.js';

// Unit tier: password hashing, the lockout ladder, logins and sessions over a real store
// (SQLite, or PostgreSQL when the suite runs on it) with a fake clock. Users made here by hand
// get a cheap scrypt setting so the many wrong passwords stay fast; the strings carry their
// parameters, so verification is the same.

const CHEAP: ScryptParams = { N: 1024, r: 8, p: 1 };
const PW = 'a long enough passphrase';

async function openStore(t: Test): Promise<CloudStore> {
  const dir = tempDir(t);
  const url = await testDatabaseUrl(t, dir);
  const store = url ? await PgStore.open({ url, poolSize: 4 }) : new SqliteStore(join(dir, 'cloud.db'));
  t.teardown(() => store.close());
  return store;
}

async function cheapUser(store: CloudStore, name: string, now: number, password = PW): Promise<string> {
  const id = `usr_${name}`;
  if (!(await store.users.createUser({ id, name, passwordHash: await hashPassword(password, CHEAP), role: 'admin', now }))) throw new Error(`user ${name} exists`);
  return id;
}

t.test('passwords: a self-describing scrypt string; right, wrong and tampered', async (t) => {
  const stored = await hashPassword(PW);
  const [scheme, N, r, p, salt, hash] = stored.split('$');
  t.same([scheme, Number(N), Number(r), Number(p)], ['scrypt', DEFAULT_SCRYPT.N, DEFAULT_SCRYPT.r, DEFAULT_SCRYPT.p]);
  t.equal(Buffer.from(salt!, 'base64').length, 16);
  t.equal(Buffer.from(hash!, 'base64').length, 32);
  t.notOk(stored.includes(PW));
  t.not(await hashPassword(PW), stored, 'a fresh salt each time');

  t.ok(await verifyPassword(PW, stored), 'the right password');
  t.notOk(await verifyPassword(PW + '!', stored), 'a wrong one');
  t.notOk(await verifyPassword('', stored), 'an empty one');

  const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
  t.notOk(await verifyPassword(PW, ['scrypt', N, r, p, salt, flip(hash!)].join('$')), 'a changed hash');
  t.notOk(await verifyPassword(PW, ['scrypt', N, r, p, flip(salt!), hash].join('$')), 'a changed salt');
  t.notOk(await verifyPassword(PW, ['scrypt', 2 ** 14, r, p, salt, hash].join('$')), 'a changed cost');
  for (const bad of ['', 'scrypt', stored.replace('scrypt', 'bcrypt'), ['scrypt', 1000, r, p, salt, hash].join('$'), ['scrypt', 2 ** 24, r, p, salt, hash].join('$'), ['scrypt', N, 0, p, salt, hash].join('$'), ['scrypt', N, r, p, '!!', hash].join('$'), stored + '$x']) {
    t.notOk(await verifyPassword(PW, bad), `malformed or out of bounds: ${bad.slice(0, 24)}…`);
  }
  const cheap = await hashPassword(PW, CHEAP);
  t.match(cheap, /^scrypt\$1024\$8\$1\$/);
  t.ok(await verifyPassword(PW, cheap), 'the parameters travel with the hash');
});

t.test('passwords: shorter than 10 characters is refused with the reason', async (t) => {
  t.throws(() => checkNewPassword('123456789'), { code: 'PASSWORD_REJECTED', message: /too short: at least 10 characters/ });
  t.doesNotThrow(() => checkNewPassword('1234567890'));
  t.throws(() => checkNewPassword('ééééé'), { code: 'PASSWORD_REJECTED' }, 'characters, not bytes');
  t.throws(() => checkNewPassword('x'.repeat(1025)), { code: 'PASSWORD_REJECTED', message: /too long/ });
  await t.rejects(hashPassword('short'), { code: 'PASSWORD_REJECTED' });
});

t.test('the lockout ladder: 5 wrong → 60 s, doubling per further failure, at most 15 min', async (t) => {
  const now = 1_000_000;
  t.same([1, 2, 3, 4].map((f) => lockedUntil(f, now)), [null, null, null, null]);
  t.equal(lockedUntil(5, now), now + 60_000);
  t.equal(lockedUntil(6, now), now + 120_000);
  t.equal(lockedUntil(7, now), now + 240_000);
  t.equal(lockedUntil(9, now), now + 900_000, '16 min is capped at 15');
  t.equal(lockedUntil(500, now), now + MAX_LOCK_MS);
  t.equal(FIRST_LOCK_MS, 60_000);
});

t.test('users: names are unique ignoring case, found in any case, listed in that order', async (t) => {
  const store = await openStore(t);
  await cheapUser(store, 'bo', 1);
  await cheapUser(store, 'Ana', 2);
  await cheapUser(store, 'cy', 3);
  t.notOk(await store.users.createUser({ id: 'usr_other', name: 'ANA', passwordHash: 'x', role: 'admin', now: 4 }), 'a name taken in another case');
  t.notOk(await store.users.createUser({ id: 'usr_bo', name: 'dee', passwordHash: 'x', role: 'admin', now: 4 }), 'a taken id');
  t.match(await store.users.findUser('aNA'), { id: 'usr_Ana', name: 'Ana', createdAt: 2 });
  t.equal(await store.users.findUser('an'), null, 'whole names only');
  t.same((await store.users.listUsers()).map((u) => u.name), ['Ana', 'bo', 'cy'], 'by name, ignoring case');
  t.ok(await store.users.disableUser('ANA', 5));
  t.match(await store.users.findUser('ana'), { disabledAt: 5 });
  t.notOk(await store.users.setPassword('nobody', 'x', 6), 'an unknown name');
});

t.test('login: locked after 5 wrong passwords, even for the right one, until the lock ends', async (t) => {
  const store = await openStore(t);
  const clock = fakeClock();
  const login = new UserLogin(store.users, clock.now);
  await cheapUser(store, 'Ana', clock.now());

  for (let i = 1; i <= 4; i++) await t.rejects(login.login('ana', 'wrong password'), { code: 'LOGIN_FAILED', message: 'wrong user name or password' }, `wrong #${i}`);
  const fifth = await login.login('ana', 'wrong password').catch((e: unknown) => e);
  t.ok(fifth instanceof LoginLockedError, 'the fifth wrong password locks');
  t.match(fifth, { code: 'LOGIN_LOCKED', statusCode: 429, retryAfterS: 60, message: /locked, try again in 60 s/ });

  await clock.advance(20_000);
  await t.rejects(login.login('ana', PW), { code: 'LOGIN_LOCKED', retryAfterS: 40, message: /try again in 40 s/ }, 'the right password is refused while locked');
  t.equal((await store.users.findUser('ana'))!.failedLogins, 5, 'a refused attempt during the lock is not counted');

  await clock.advance(40_000);
  await t.rejects(login.login('ana', 'still wrong'), { code: 'LOGIN_LOCKED', retryAfterS: 120 }, 'the sixth wrong password: twice as long');
  await clock.advance(120_000);
  const user = await login.login(' Ana ', PW);
  t.match(user, { name: 'Ana', failedLogins: 0, lockedUntil: null });
  t.notOk('passwordHash' in user, 'the hash does not leave the login');
  t.match(await store.users.findUser('ana'), { failedLogins: 0, lockedUntil: null }, 'a good login resets the count');
  await t.rejects(login.login('ana', 'wrong again'), { code: 'LOGIN_FAILED' }, 'and the ladder starts again');
});

t.test('login: parallel wrong guesses are counted one by one and lock at once', async (t) => {
  const store = await openStore(t);
  const clock = fakeClock();
  const login = new UserLogin(store.users, clock.now);
  const id = await cheapUser(store, 'bo', clock.now());
  // The store: eight failures recorded at once are eight, each seeing its own count.
  const counts = await Promise.all(Array.from({ length: 8 }, () => store.users.recordLoginFailure(id, (n) => lockedUntil(n, clock.now()))));
  t.same(counts.map((c) => c.failures).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8], 'no failure lost to a race');
  t.match(await store.users.findUser('bo'), { failedLogins: 8, lockedUntil: clock.now() + 480_000 }, 'the lock written last is the 8th failure\'s (60 s × 2³)');

  // Through the login: a guess that reads the user after the lock is written is refused
  // without being counted, so how many count depends on timing; all are refused, none lost.
  await cheapUser(store, 'carol', clock.now());
  const results = await Promise.all(Array.from({ length: 8 }, () => login.login('carol', 'wrong password').catch((e: { code: string }) => e.code)));
  t.ok(results.every((c) => c === 'LOGIN_FAILED' || c === 'LOGIN_LOCKED'), 'every guess refused');
  const after = (await store.users.findUser('carol'))!;
  t.ok(after.failedLogins >= 5 && after.lockedUntil !== null && after.lockedUntil > clock.now(), `locked after ${after.failedLogins} counted failures`);
});

t.test('login: unknown and disabled users get the same answer, after the same work', async (t) => {
  const store = await openStore(t);
  const clock = fakeClock();
  const login = new UserLogin(store.users, clock.now);
  await addUser(store.users, 'real', PW, clock.now()); // the default (slow) setting, like the dummy
  await addUser(store.users, 'gone', PW, clock.now());
  await disableUser(store.users, 'gone', clock.now());

  const wrong = await login.login('real', 'not the password').catch((e: Error) => e.message);
  t.equal(await login.login('nobody', PW).catch((e: Error) => e.message), wrong, 'unknown: the same message');
  t.equal(await login.login('gone', PW).catch((e: Error) => e.message), wrong, 'disabled, right password: the same message');
  t.equal((await store.users.findUser('gone'))!.failedLogins, 0);

  const timed = async (name: string) => {
    const start = process.hrtime.bigint();
    await login.login(name, 'not the password').catch(() => undefined);
    return Number(process.hrtime.bigint() - start);
  };
  let known = 0;
  let unknown = 0;
  for (let i = 0; i < 3; i++) {
    known += await timed('real');
    unknown += await timed('nobody');
  }
  // Without the dummy hash an unknown name would answer ~1000× faster; allow a loaded machine.
  t.ok(unknown > known * 0.3, `unknown names run scrypt too (${(unknown / 3e6).toFixed(0)} ms vs ${(known / 3e6).toFixed(0)} ms)`);
});

t.test('sessions: stored as a hash, expire after 7 days, end on logout, new password or disable', async (t) => {
  const store = await openStore(t);
  const clock = fakeClock();
  const id = await cheapUser(store, 'cy', clock.now());

  const s = await startSession(store.users, id, clock.now());
  t.match(s.token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes');
  t.equal(s.expiresAt, clock.now() + SESSION_TTL_MS);
  t.equal(SESSION_TTL_MS, 7 * 86_400_000);
  t.match(await userOfSession(store.users, s.token, clock.now()), { name: 'cy' });
  t.match(await store.users.sessionUser(sha256Hex(s.token), clock.now()), { name: 'cy' }, 'kept as its SHA-256');
  t.equal(await store.users.sessionUser(s.token, clock.now()), null, 'not as the token itself');
  t.equal(await userOfSession(store.users, 'x' + s.token.slice(1), clock.now()), null);

  await clock.advance(SESSION_TTL_MS - 1);
  t.ok(await userOfSession(store.users, s.token, clock.now()), 'valid until the last millisecond');
  await clock.advance(1);
  t.equal(await userOfSession(store.users, s.token, clock.now()), null, 'expired');

  const a = await startSession(store.users, id, clock.now());
  await endSession(store.users, a.token);
  t.equal(await userOfSession(store.users, a.token, clock.now()), null, 'logged out');

  const b = await startSession(store.users, id, clock.now());
  await setUserPassword(store.users, 'cy', 'another long passphrase', clock.now());
  t.equal(await userOfSession(store.users, b.token, clock.now()), null, 'a new password ends sessions');

  const c = await startSession(store.users, id, clock.now());
  await disableUser(store.users, 'cy', clock.now());
  t.equal(await userOfSession(store.users, c.token, clock.now()), null, 'disabling ends sessions');
});
