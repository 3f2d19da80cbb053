// Unit: the supervision tree on a fake clock, with probe services the test crashes, finishes and
// stops by hand: one-for-one, restart types, dynamic children, stops, status. Budgets and nested
// give-ups are in supervisor-budget.test.ts; real processes in supervisor-process.test.ts.
import t from 'tap';
import type { Service } from '../src/lib/service.js';
import { FakeClock } from '../src/lib/clock.js';
import { VigilError } from '../src/lib/errors.js';
import {
  DEFAULT_RESTART_DELAY_MS,
  SUPERVISOR_ERROR_RETRYABLE,
  Supervisor,
  SupervisorGaveUpError,
  type RestartType,
} from '../src/supervise/supervisor.js';
import { Probe, captureLog, childState, rig, settle, supervisor } from './supervisor-harness.js';

t.test('one-for-one: only the crashed child restarts, after the delay; its sibling is untouched', async (t) => {
  const a = new Probe();
  const b = new Probe();
  const r = rig(t, [
    ['a', 'permanent', a],
    ['b', 'permanent', b],
  ]);
  t.equal(a.runs, 1);
  t.equal(b.runs, 1);
  a.crash();
  await settle();
  t.equal(childState(r.sup, 'a')?.state, 'restarting');
  t.match(r.events, [{ type: 'crash', supervisor: 'root', child: 'a', willRestart: true }]);
  t.match(childState(r.sup, 'a')?.lastCrash, { at: 0, code: 'PROBE_CRASH', message: 'probe crashed' });
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS - 1);
  t.equal(a.runs, 1, 'not restarted before the delay');
  await r.clock.advance(1);
  t.equal(a.runs, 2, 'restarted once the delay has passed');
  t.equal(a.signals[0]!.aborted, false, 'the crashed run was not aborted after the fact');
  t.not(a.signals[1], a.signals[0], 'each run gets its own signal');
  t.match(childState(r.sup, 'a'), { state: 'running', restarts: 1, startedAt: DEFAULT_RESTART_DELAY_MS });
  t.equal(b.runs, 1, 'the sibling was not restarted');
  t.equal(b.signal.aborted, false, 'the sibling was not stopped');
  t.match(childState(r.sup, 'b'), { state: 'running', restarts: 0, startedAt: 0, lastCrash: null });
  t.equal(r.done(), false, 'the supervisor keeps running');
});

t.test('a custom restart delay is honoured on the injected clock', async (t) => {
  const clock = new FakeClock();
  const a = new Probe();
  const sup = new Supervisor({ name: 's', budget: { maxRestarts: 5, periodMs: 60_000 }, clock, log: captureLog().log, restartDelayMs: 7_000 });
  sup.add({ id: 'a', restart: 'permanent', service: a });
  const stop = new AbortController();
  const running = sup.start(stop.signal);
  a.crash();
  await settle();
  await clock.advance(6_999);
  t.equal(a.runs, 1);
  await clock.advance(1);
  t.equal(a.runs, 2);
  stop.abort();
  await running;
});

// [type, how it ended, restarted?, state after]
const TYPES: [RestartType, 'crash' | 'return', boolean, string][] = [
  ['permanent', 'crash', true, 'running'],
  ['permanent', 'return', true, 'running'],
  ['transient', 'crash', true, 'running'],
  ['transient', 'return', false, 'stopped'],
  ['temporary', 'crash', false, 'failed'],
  ['temporary', 'return', false, 'stopped'],
];
for (const [type, end, restarted, state] of TYPES) {
  t.test(`${type} child after a ${end}: ${restarted ? 'restarted' : 'not restarted'}, ${state}`, async (t) => {
    const p = new Probe();
    const sibling = new Probe();
    const r = rig(t, [
      ['p', type, p],
      ['sibling', 'permanent', sibling],
    ]);
    if (end === 'crash') p.crash();
    else p.finish();
    await settle();
    await r.clock.advance(DEFAULT_RESTART_DELAY_MS * 10);
    t.equal(p.runs, restarted ? 2 : 1);
    t.equal(childState(r.sup, 'p')?.state, state);
    t.equal(childState(r.sup, 'p')?.restarts, restarted ? 1 : 0);
    t.equal(r.sup.status().restartsInWindow, restarted ? 1 : 0, 'only restarts count against the budget');
    const crashes = r.events.filter((e) => e.type === 'crash');
    t.same(
      crashes.map((e) => e.type === 'crash' && e.willRestart),
      end === 'crash' ? [restarted] : [],
      'a crash event only for a crash',
    );
    t.equal(sibling.runs, 1);
    t.equal(r.done(), false);
  });
}

t.test('dynamic children: add starts at once, a duplicate throws, remove stops, waits and forgets', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'permanent', a]]);
  const c = new Probe();
  c.stubborn = true;
  r.sup.add({ id: 'c', restart: 'permanent', service: c });
  t.equal(c.runs, 1);
  t.throws(() => r.sup.add({ id: 'c', restart: 'permanent', service: new Probe() }), { code: 'SUPERVISOR_DUPLICATE_CHILD' });

  let removed = false;
  const removing = r.sup.remove('c').then(() => (removed = true));
  await settle();
  t.equal(c.signal.aborted, true, 'its signal is aborted');
  t.equal(removed, false, 'remove waits for it to return');
  t.ok(childState(r.sup, 'c'), 'still listed while stopping');
  t.equal(r.sup.restartChild('c'), false, 'a child being removed cannot be restarted');
  c.release();
  await removing;
  t.equal(childState(r.sup, 'c'), undefined, 'forgotten');
  t.equal(r.events.length, 0, 'a removal is not a crash');
  await r.clock.advance(60_000);
  t.equal(c.runs, 1, 'never restarted');
  t.equal(a.runs, 1, 'the other child untouched');
  t.equal(a.signal.aborted, false);

  c.stubborn = false;
  r.sup.add({ id: 'c', restart: 'permanent', service: c });
  t.equal(c.runs, 2, 'the id is free again');
  await r.sup.remove('unknown');
});

t.test('remove: a child that has stopped but is not yet forgotten cannot be restarted', async (t) => {
  const c = new Probe();
  const r = rig(t, [['c', 'transient', c]]);
  const removing = r.sup.remove('c');
  // Try restartChild on every microtask hop until the child shows 'stopped' (before remove resumes).
  let attempted: boolean | undefined;
  const poll = (hops: number): void => {
    if (attempted === undefined && childState(r.sup, 'c')?.state === 'stopped') attempted = r.sup.restartChild('c');
    else if (hops > 0) void Promise.resolve().then(() => poll(hops - 1));
  };
  poll(100);
  await removing;
  t.equal(attempted, false, 'refused while remove() waits');
  t.equal(c.runs, 1);
  t.same(r.sup.status().children, []);
});

t.test('remove a child waiting in its restart delay: it is not restarted', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'permanent', a]]);
  a.crash();
  await settle();
  t.equal(childState(r.sup, 'a')?.state, 'restarting');
  await r.sup.remove('a');
  t.equal(r.clock.pendingSleepers, 0, 'its delay was cancelled');
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS * 10);
  t.equal(a.runs, 1);
  t.same(r.sup.status().children, []);
});

t.test('stop while a child is in its restart delay: start() resolves at once, no restart', async (t) => {
  const a = new Probe();
  const b = new Probe();
  const r = rig(t, [
    ['a', 'permanent', a],
    ['b', 'permanent', b],
  ]);
  a.crash();
  await settle();
  t.equal(r.clock.pendingSleepers, 1);
  r.stop.abort();
  t.equal(await r.result, 'resolved');
  t.equal(b.signal.aborted, true);
  t.equal(r.clock.pendingSleepers, 0, 'the delay was cancelled');
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS * 10);
  t.equal(a.runs, 1);
  t.match(r.sup.status(), { state: 'stopped', children: [{ state: 'stopped', startedAt: null }, { state: 'stopped', startedAt: null }] });
});

t.test('a child that rejects when told to stop has not crashed', async (t) => {
  const a: Service = {
    start: (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new VigilError('E_ABORTED', 'aborted')))),
  };
  const r = rig(t, [['a', 'permanent', a]]);
  r.stop.abort();
  t.equal(await r.result, 'resolved');
  t.same(r.events, []);
  t.equal(childState(r.sup, 'a')?.lastCrash, null);
});

t.test('a synchronous throw in start() is a crash like a rejection', async (t) => {
  const a = new Probe();
  const b = new Probe();
  a.throwSync = new VigilError('E_SYNC', 'threw at once');
  const r = rig(t, [
    ['a', 'permanent', a],
    ['b', 'permanent', b],
  ]);
  t.equal(b.runs, 1, 'the next child still started');
  await settle();
  t.match(r.events, [{ type: 'crash', child: 'a', willRestart: true }]);
  t.match(childState(r.sup, 'a')?.lastCrash, { code: 'E_SYNC', message: 'threw at once' });
  a.throwSync = null;
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(a.runs, 2);
  t.equal(childState(r.sup, 'a')?.state, 'running');
});

t.test('a crash without a code or an Error is still summarised', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'temporary', a]]);
  a.crash('just a string');
  await settle();
  t.match(childState(r.sup, 'a'), { state: 'failed', lastCrash: { code: 'UNCODED', message: 'just a string' } });
});

t.test('status nests sub-supervisors and is a copy', async (t) => {
  const r = rig(t, [['camera', 'transient', new Probe()]], { maxRestarts: 25, periodMs: 60_000 });
  const variants = supervisor('variants', r.clock, { maxRestarts: 50, periodMs: 60_000 }, []);
  variants.add({ id: 'compressed', restart: 'permanent', service: new Probe() });
  t.equal(variants.status().state, 'idle');
  t.match(variants.status().children, [{ id: 'compressed', state: 'stopped', startedAt: null }]);
  await r.clock.advance(1_000);
  r.sup.add({ id: 'variants', restart: 'permanent', service: variants });
  const st = r.sup.status();
  t.same(st, {
    name: 'root',
    state: 'running',
    budget: { maxRestarts: 25, periodMs: 60_000 },
    restartsInWindow: 0,
    children: [
      { id: 'camera', restart: 'transient', state: 'running', restarts: 0, lastCrash: null, startedAt: 0 },
      {
        id: 'variants',
        restart: 'permanent',
        state: 'running',
        restarts: 0,
        lastCrash: null,
        startedAt: 1_000,
        supervisor: {
          name: 'variants',
          state: 'running',
          budget: { maxRestarts: 50, periodMs: 60_000 },
          restartsInWindow: 0,
          children: [{ id: 'compressed', restart: 'permanent', state: 'running', restarts: 0, lastCrash: null, startedAt: 1_000 }],
        },
      },
    ],
  });
  st.budget.maxRestarts = 0;
  st.children[0]!.state = 'failed';
  t.equal(r.sup.status().budget.maxRestarts, 25, 'changing a status changes nothing');
  t.equal(r.sup.status().children[0]!.state, 'running');
});

t.test('a supervisor runs again after it stopped, and not twice at once', async (t) => {
  const clock = new FakeClock();
  const a = new Probe();
  const sup = new Supervisor({ name: 's', budget: { maxRestarts: 1, periodMs: 60_000 }, clock, log: captureLog().log });
  sup.add({ id: 'a', restart: 'permanent', service: a });
  const stop1 = new AbortController();
  const first = sup.start(stop1.signal);
  await t.rejects(sup.start(new AbortController().signal), { code: 'SUPERVISOR_ALREADY_RUNNING' });
  t.equal(a.runs, 1, 'the second start started nothing');
  stop1.abort();
  await first;
  t.equal(sup.status().state, 'stopped');
  const stop2 = new AbortController();
  const second = sup.start(stop2.signal);
  t.equal(a.runs, 2);
  t.equal(sup.status().state, 'running');
  stop2.abort();
  await second;
});

t.test('a signal already aborted: start() returns without starting anything', async (t) => {
  const a = new Probe();
  const sup = new Supervisor({ name: 's', budget: { maxRestarts: 1, periodMs: 1_000 }, clock: new FakeClock(), log: captureLog().log });
  sup.add({ id: 'a', restart: 'permanent', service: a });
  await sup.start(AbortSignal.abort());
  t.equal(a.runs, 0);
  t.equal(sup.status().state, 'stopped');
});

t.test('a listener that throws does not break supervision', async (t) => {
  const clock = new FakeClock();
  const a = new Probe();
  const { log, lines } = captureLog();
  const sup = new Supervisor({
    name: 's',
    budget: { maxRestarts: 1, periodMs: 60_000 },
    clock,
    log,
    onEvent: () => {
      throw new Error('listener bug');
    },
  });
  sup.add({ id: 'a', restart: 'permanent', service: a });
  const stop = new AbortController();
  const running = sup.start(stop.signal);
  a.crash();
  await settle();
  await clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(a.runs, 2, 'restarted all the same');
  t.ok(lines.some((l) => l.msg === 'supervisor event listener threw'));
  stop.abort();
  await running;
});

t.test('budgets are checked at construction', async (t) => {
  const base = { name: 's', clock: new FakeClock(), log: captureLog().log };
  for (const budget of [
    { maxRestarts: -1, periodMs: 1_000 },
    { maxRestarts: 1.5, periodMs: 1_000 },
    { maxRestarts: 1, periodMs: 0 },
    { maxRestarts: 1, periodMs: Number.NaN },
  ]) {
    t.throws(() => new Supervisor({ ...base, budget }), { code: 'SUPERVISOR_BAD_BUDGET' }, JSON.stringify(budget));
  }
  t.doesNotThrow(() => new Supervisor({ ...base, budget: { maxRestarts: 0, periodMs: 1 } }));
});

t.test('error codes: none is retryable', async (t) => {
  t.same(SUPERVISOR_ERROR_RETRYABLE, {
    SUPERVISOR_GAVE_UP: false,
    SUPERVISOR_DUPLICATE_CHILD: false,
    SUPERVISOR_BAD_BUDGET: false,
    SUPERVISOR_ALREADY_RUNNING: false,
  });
  const e = new SupervisorGaveUpError('s', { child: 'c', code: 'X', message: 'm' }, 'why', new Error('cause'));
  t.ok(e instanceof VigilError);
  t.match(e, { code: 'SUPERVISOR_GAVE_UP', retryable: false, name: 'SupervisorGaveUpError', message: 'supervisor "s" gave up: why' });
  t.match(e.cause, { message: 'cause' });
});
