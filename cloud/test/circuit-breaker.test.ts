import t from 'tap';
import { BREAKER_PROBE_BUSY_RETRY_MS, CircuitBreaker, type BreakerPermit, type BreakerState } from '../src/analysis/circuit-breaker.js';
import { ConcurrencyLimit } from '../src/analysis/concurrency.js';

// The breaker and the concurrency limit on their own, with time as a number the test moves.

function setup(o: { failureThreshold?: number; openMs?: number; successesToClose?: number } = {}) {
  let now = 1_000_000;
  const changes: string[] = [];
  const breaker = new CircuitBreaker({ now: () => now, ...o, onStateChange: ({ from, to }) => changes.push(`${from}→${to}`) });
  const permit = (): BreakerPermit => {
    const a = breaker.admit();
    if (!a.ok) throw new Error(`refused (${a.state}) until ${a.retryAt}`);
    return a.permit;
  };
  return { breaker, changes, permit, advance: (ms: number) => (now += ms), now: () => now };
}

t.test('closed → open after 5 consecutive failures; refusals carry retryAt', async (t) => {
  const { breaker, changes, permit, advance, now } = setup();
  for (let i = 0; i < 4; i++) permit().failure();
  t.equal(breaker.state, 'closed', '4 failures: still closed');
  permit().success();
  t.equal(breaker.status().consecutiveFailures, 0, 'a success resets the count');
  for (let i = 0; i < 4; i++) permit().failure();
  t.equal(breaker.state, 'closed');
  const openedAt = now();
  permit().failure();
  t.same(breaker.status(), { state: 'open', consecutiveFailures: 5, openedAt, nextProbeAt: openedAt + 60_000 });
  t.same(changes, ['closed→open'], 'one change, reported once');
  advance(59_999);
  const a = breaker.admit();
  t.same(a, { ok: false, retryAt: openedAt + 60_000, state: 'open' });
  t.same(breaker.refusal(), { retryAt: openedAt + 60_000, state: 'open' });
  t.same(changes, ['closed→open'], 'refusals do not log');
});

t.test('open → half-open after 60 s: one probe at a time; 2 successes close it', async (t) => {
  const { breaker, changes, permit, advance, now } = setup();
  for (let i = 0; i < 5; i++) permit().failure();
  advance(60_000);
  t.equal(breaker.state, 'half-open');
  t.equal(breaker.status().nextProbeAt, null);
  const p1 = permit();
  t.equal(p1.probe, true);
  const busy = breaker.admit();
  t.same(busy, { ok: false, retryAt: now() + BREAKER_PROBE_BUSY_RETRY_MS, state: 'half-open' }, 'a second caller waits for the probe');
  p1.success();
  t.equal(breaker.state, 'half-open', 'one success is not enough');
  const p2 = permit();
  p2.success();
  t.equal(breaker.state, 'closed');
  t.same(breaker.status(), { state: 'closed', consecutiveFailures: 0, openedAt: null, nextProbeAt: null });
  t.same(changes, ['closed→open', 'open→half-open', 'half-open→closed']);
  t.equal(permit().probe, false, 'closed: calls are not probes');
});

t.test('a failed probe opens it again, for another 60 s', async (t) => {
  const { breaker, changes, permit, advance, now } = setup();
  for (let i = 0; i < 5; i++) permit().failure();
  advance(60_000);
  permit().success();
  const probe = permit();
  advance(1_000);
  probe.failure();
  t.same(breaker.status(), { state: 'open', consecutiveFailures: 1, openedAt: now(), nextProbeAt: now() + 60_000 }, 'the first probe\'s success had reset the count');
  t.same(changes, ['closed→open', 'open→half-open', 'half-open→open']);
  advance(60_000);
  t.equal(breaker.state, 'half-open');
});

t.test('released permits neither trip nor close it; a released probe frees the slot', async (t) => {
  const { breaker, permit, advance } = setup();
  for (let i = 0; i < 20; i++) permit().release();
  t.equal(breaker.state, 'closed', '20 answers that say nothing (4xx) do not trip it');
  for (let i = 0; i < 4; i++) permit().failure();
  permit().release();
  t.equal(breaker.status().consecutiveFailures, 4, 'nor reset the count');
  permit().failure();
  t.equal(breaker.state, 'open');
  advance(60_000);
  permit().release();
  t.equal(breaker.state, 'half-open');
  t.ok(breaker.admit().ok, 'the slot is free again');
});

t.test('outcomes from before the last change do not count; a permit reports once', async (t) => {
  const { breaker, permit, advance } = setup({ failureThreshold: 2 });
  const slow = permit();
  const slowSuccess = permit();
  permit().failure();
  permit().failure();
  t.equal(breaker.state, 'open');
  slowSuccess.success();
  t.equal(breaker.state, 'open', 'a late success from the closed period does not count');
  advance(60_000);
  const probe = permit();
  slow.failure();
  t.equal(breaker.state, 'half-open', 'a late failure from the closed period does not reopen it');
  probe.success();
  probe.success();
  t.equal(breaker.state, 'half-open', 'the same permit twice is one success');
  permit().success();
  t.equal(breaker.state, 'closed');
});

t.test('options are checked', async (t) => {
  t.throws(() => new CircuitBreaker({ now: Date.now, failureThreshold: 0 }), /failureThreshold/);
  t.throws(() => new CircuitBreaker({ now: Date.now, successesToClose: 1.5 }), /successesToClose/);
  const states: BreakerState[] = [];
  const b = new CircuitBreaker({ now: Date.now, failureThreshold: 1, onStateChange: ({ to }) => states.push(to) });
  const a = b.admit();
  if (a.ok) a.permit.failure();
  t.same(states, ['open']);
});

t.test('concurrency limit: FIFO, never more than the limit, an aborted waiter leaves the line', async (t) => {
  const limit = new ConcurrencyLimit(2);
  const order: number[] = [];
  let active = 0;
  let most = 0;
  const gates: (() => void)[] = [];
  const job = (i: number) =>
    limit.run(async () => {
      order.push(i);
      active++;
      most = Math.max(most, active);
      await new Promise<void>((r) => gates.push(r));
      active--;
    });
  const ac = new AbortController();
  const jobs = [job(1), job(2), job(3), job(4)];
  const aborted = limit.run(async () => order.push(99), ac.signal);
  const last = job(5);
  await new Promise((r) => setImmediate(r));
  t.same([limit.inFlight, limit.queued], [2, 4]);
  ac.abort();
  await t.rejects(aborted, { code: 'WAIT_ABORTED' });
  t.equal(limit.queued, 3);
  while (order.length < 5 || gates.length > 0) {
    gates.shift()?.();
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all([...jobs, last]);
  t.same(order, [1, 2, 3, 4, 5], 'in arrival order, the aborted one never ran');
  t.equal(most, 2);
  t.same([limit.inFlight, limit.queued], [0, 0]);
  t.throws(() => new ConcurrencyLimit(0), /positive integer/);
});
