// The PIN form's brute-force lock and the page's sessions, on a fake clock.
import t from 'tap';
import { FakeClock } from '../src/lib/clock.js';
import { LOCKOUT_FIRST_MS, LOCKOUT_FORGET_MS, LOCKOUT_FREE_ATTEMPTS, LOCKOUT_MAX_MS, PinLockout } from '../src/local/pin-lockout.js';
import { MAX_SESSIONS, SESSION_TTL_MS, Sessions } from '../src/local/sessions.js';
import { samePin } from '../src/local/status-server.js';

const wrong = (): boolean => false;
const right = (): boolean => true;

t.test('the fifth wrong PIN locks the form for 30 s, each further one for twice as long, capped at 15 min', async (t) => {
  const clock = new FakeClock();
  const l = new PinLockout(clock);
  for (let i = 1; i <= LOCKOUT_FREE_ATTEMPTS - 1; i++) t.same(l.attempt(wrong), { ok: false, locked: false, failures: i, remaining: LOCKOUT_FREE_ATTEMPTS - i });
  t.same(l.attempt(wrong), { ok: false, locked: true, retryAfterMs: LOCKOUT_FIRST_MS, failures: 5 }, 'the fifth locks for 30 s');
  let asked = false;
  const v = l.attempt(() => (asked = true));
  t.same(v, { ok: false, locked: true, retryAfterMs: LOCKOUT_FIRST_MS, failures: 5 }, 'while locked even the right PIN is refused');
  t.notOk(asked, 'and not even compared');
  await clock.advance(10_000);
  t.equal(l.lockedForMs(), LOCKOUT_FIRST_MS - 10_000, 'Retry-After counts down');
  const waits: number[] = [];
  for (let i = 0; i < 8; i++) {
    await clock.advance(l.lockedForMs());
    const r = l.attempt(wrong);
    waits.push(r.ok || !r.locked ? -1 : r.retryAfterMs);
  }
  t.same(waits, [60_000, 120_000, 240_000, 480_000, LOCKOUT_MAX_MS, LOCKOUT_MAX_MS, LOCKOUT_MAX_MS, LOCKOUT_MAX_MS], 'doubling, capped');
  await clock.advance(LOCKOUT_MAX_MS);
  t.same(l.attempt(right), { ok: true }, 'the right PIN after the lock');
  t.same(l.attempt(wrong), { ok: false, locked: false, failures: 1, remaining: 4 }, 'the right PIN forgets the wrong ones');
});

t.test('wrong PINs are forgotten after an hour without one', async (t) => {
  const clock = new FakeClock();
  const l = new PinLockout(clock);
  for (let i = 0; i < 4; i++) l.attempt(wrong);
  await clock.advance(LOCKOUT_FORGET_MS + 1);
  t.same(l.attempt(wrong), { ok: false, locked: false, failures: 1, remaining: 4 });
});

t.test('PINs compare in constant time, whatever their lengths', async (t) => {
  t.ok(samePin('48213957', '48213957'));
  t.notOk(samePin('48213958', '48213957'));
  t.notOk(samePin('', '48213957'));
  t.notOk(samePin('482139570', '48213957'));
});

t.test('sessions: random ids, 12 h, the oldest dropped past the cap, ended on logout', async (t) => {
  const clock = new FakeClock();
  const s = new Sessions(clock);
  const a = s.create();
  t.match(a, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
  t.not(s.create(), a);
  t.ok(s.valid(a));
  t.notOk(s.valid(undefined));
  t.notOk(s.valid('forged'));
  await clock.advance(SESSION_TTL_MS - 1);
  t.ok(s.valid(a), 'valid for 12 h');
  await clock.advance(1);
  t.notOk(s.valid(a), 'not a moment longer');
  const ids = Array.from({ length: MAX_SESSIONS + 1 }, () => s.create());
  t.equal(s.size, MAX_SESSIONS);
  t.notOk(s.valid(ids[0]), 'the oldest went');
  t.ok(s.valid(ids[MAX_SESSIONS]));
  s.end(ids[MAX_SESSIONS]);
  t.notOk(s.valid(ids[MAX_SESSIONS]), 'logged out');
});
