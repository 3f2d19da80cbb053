// Unit: restart budgets (a sliding window over all children), giving up, and what a parent does
// with a sub-supervisor that gave up. Harness: supervisor-harness.ts.
import t from 'tap';
import { FakeClock } from '../src/lib/clock.js';
import { VigilError } from '../src/lib/errors.js';
import {
  DEFAULT_RESTART_DELAY_MS,
  Supervisor,
  SupervisorGaveUpError,
  type SupervisorEvent,
} from '../src/supervise/supervisor.js';
import { Probe, captureLog, childState, rig, settle, supervisor } from './supervisor-harness.js';

t.test('budget: maxRestarts crashes are restarted, one more gives up, stops every child and rejects', async (t) => {
  const a = new Probe();
  const b = new Probe();
  const r = rig(
    t,
    [
      ['a', 'permanent', a],
      ['b', 'transient', b],
    ],
    { maxRestarts: 3, periodMs: 60_000 },
  );
  for (let i = 1; i <= 3; i++) {
    a.crash(new VigilError('E_LOOP', `crash ${i}`));
    await settle();
    await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
    t.equal(a.runs, i + 1, `crash ${i} restarted`);
  }
  t.equal(r.sup.status().restartsInWindow, 3);
  t.equal(r.done(), false);
  b.stubborn = false;
  a.crash(new VigilError('E_LOOP', 'crash 4'));
  const err = await r.result;
  t.ok(err instanceof SupervisorGaveUpError);
  t.match(err, { code: 'SUPERVISOR_GAVE_UP', supervisor: 'root', lastCrash: { child: 'a', code: 'E_LOOP', message: 'crash 4' }, retryable: false });
  t.match((err as Error).message, /supervisor "root" gave up: child "a" would exceed the restart budget \(3 in 60000 ms\); last error: E_LOOP: crash 4/);
  t.equal(b.signal.aborted, true, 'the sibling was stopped');
  t.equal(b.returned, true, 'and start() waited for it');
  t.equal(a.runs, 4, 'no fifth run');
  t.match(r.sup.status(), { state: 'gave_up', children: [{ id: 'a', state: 'failed' }, { id: 'b', state: 'stopped' }] });
  const gaveUp = r.events.filter((e) => e.type === 'gave_up');
  t.match(gaveUp, [{ type: 'gave_up', supervisor: 'root', reason: /child "a".*E_LOOP: crash 4/ }]);
  t.match(r.events.at(-2), { type: 'crash', child: 'a', willRestart: false });
  t.ok(
    r.lines.some((l) => l.level === 50 && /supervisor gave up: child "a".*crash 4/.test(String(l.msg)) && l.supervisor === 'root'),
    'the give-up is logged with the supervisor, the child and the last error',
  );
});

t.test('budget: start() waits for a child slow to stop before rejecting', async (t) => {
  const a = new Probe();
  const slow = new Probe();
  slow.stubborn = true;
  const r = rig(
    t,
    [
      ['a', 'permanent', a],
      ['slow', 'permanent', slow],
    ],
    { maxRestarts: 0, periodMs: 1_000 },
  );
  a.crash();
  await settle();
  t.equal(slow.signal.aborted, true);
  t.equal(r.done(), false, 'still waiting for the slow child');
  t.equal(r.sup.status().state, 'gave_up', 'already reported as given up');
  t.match(r.events, [{ type: 'crash' }, { type: 'gave_up' }], 'reported before the children have stopped');
  slow.release();
  t.match(await r.result, { code: 'SUPERVISOR_GAVE_UP' });
});

t.test('budget: the window slides; crashes spread beyond the period never exhaust it', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'permanent', a]], { maxRestarts: 2, periodMs: 10_000 });
  // One crash every 6 s: never more than 2 within any 10 s.
  for (let i = 0; i < 10; i++) {
    a.crash();
    await settle();
    t.equal(r.sup.status().restartsInWindow, Math.min(i + 1, 2), `crash at ${i * 6} s: only the last 10 s count`);
    await r.clock.advance(6_000);
  }
  t.equal(a.runs, 11, 'every crash restarted');
  t.equal(r.done(), false);
  await r.clock.advance(10_000);
  t.equal(r.sup.status().restartsInWindow, 0, 'old restarts leave the window');
});

t.test('budget: a window, not a counter reset every period', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'permanent', a]], { maxRestarts: 2, periodMs: 10_000 });
  // Crashes at 9 s, 11 s and 12 s: a counter reset at 10 s would allow the third.
  await r.clock.advance(9_000);
  a.crash();
  await settle();
  await r.clock.advance(2_000);
  t.equal(a.runs, 2);
  a.crash();
  await settle();
  await r.clock.advance(1_000);
  t.equal(a.runs, 3);
  a.crash();
  t.match(await r.result, { code: 'SUPERVISOR_GAVE_UP' });
});

t.test('budget: restarts of all children count together', async (t) => {
  const a = new Probe();
  const b = new Probe();
  const r = rig(
    t,
    [
      ['a', 'permanent', a],
      ['b', 'permanent', b],
    ],
    { maxRestarts: 2, periodMs: 60_000 },
  );
  a.crash();
  b.crash();
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(a.runs + b.runs, 4);
  b.crash();
  t.match(await r.result, { code: 'SUPERVISOR_GAVE_UP', lastCrash: { child: 'b' } });
});

t.test('budget: a permanent child that keeps returning spends it too', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'permanent', a]], { maxRestarts: 1, periodMs: 60_000 });
  a.finish();
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(a.runs, 2);
  a.finish();
  t.match(await r.result, { code: 'SUPERVISOR_GAVE_UP', lastCrash: { child: 'a', code: 'RETURNED' } });
  t.same(
    r.events.map((e) => e.type),
    ['gave_up'],
    'a return is not reported as a crash',
  );
});

t.test('nested: a sub-supervisor that gives up is left failed; the parent keeps its budget and siblings', async (t) => {
  const events: SupervisorEvent[] = [];
  const camera = new Probe();
  const upload = new Probe();
  const r = rig(t, [['camera', 'transient', camera]], { maxRestarts: 1, periodMs: 60_000 });
  const uploads = supervisor('uploads', r.clock, { maxRestarts: 1, periodMs: 60_000 }, events);
  uploads.add({ id: 'upload', restart: 'permanent', service: upload });
  r.sup.add({ id: 'uploads', restart: 'permanent', service: uploads });
  t.equal(upload.runs, 1, 'added while running: started at once');

  upload.crash(new VigilError('E_UPLOAD', 'cloud said no'));
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(upload.runs, 2);
  upload.crash(new VigilError('E_UPLOAD', 'cloud said no again'));
  await settle();

  t.match(events, [{ type: 'crash' }, { type: 'crash', willRestart: false }, { type: 'gave_up', supervisor: 'uploads' }]);
  t.match(r.events, [{ type: 'child_gave_up', supervisor: 'root', child: 'uploads', reason: /cloud said no again/ }]);
  t.notOk(
    r.events.some((e) => e.type === 'crash'),
    'not reported as an ordinary crash',
  );
  const st = childState(r.sup, 'uploads');
  t.match(st, { state: 'failed', restarts: 0, lastCrash: { code: 'SUPERVISOR_GAVE_UP' }, supervisor: { name: 'uploads', state: 'gave_up' } });
  t.equal(r.sup.status().restartsInWindow, 0, "the parent's budget is untouched");
  t.ok(
    r.lines.some((l) => l.level === 50 && l.child === 'uploads' && /gave up/.test(String(l.msg))),
    'logged by the parent',
  );

  await r.clock.advance(10 * 60_000);
  t.equal(upload.runs, 2, 'not restarted by the parent, however long we wait');
  t.equal(camera.runs, 1, 'the sibling kept running');
  t.equal(camera.signal.aborted, false);
  t.equal(r.done(), false, 'the parent did not give up');

  // The parent's budget (1) is whole: one crash of the sibling is still restarted.
  camera.crash();
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(camera.runs, 2);
});

t.test('restartChild brings a failed sub-supervisor back with a fresh budget', async (t) => {
  const events: SupervisorEvent[] = [];
  const upload = new Probe();
  const r = rig(t, []);
  const uploads = supervisor('uploads', r.clock, { maxRestarts: 1, periodMs: 60_000 }, events);
  uploads.add({ id: 'upload', restart: 'permanent', service: upload });
  r.sup.add({ id: 'uploads', restart: 'permanent', service: uploads });
  upload.crash();
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  upload.crash();
  await settle();
  t.equal(childState(r.sup, 'uploads')?.state, 'failed');

  t.equal(r.sup.restartChild('uploads'), true);
  t.equal(upload.runs, 3, 'the subtree runs again');
  t.match(r.events.at(-1), { type: 'restarted_by_request', supervisor: 'root', child: 'uploads' });
  t.match(childState(r.sup, 'uploads'), { state: 'running', restarts: 1, supervisor: { state: 'running', restartsInWindow: 0 } });
  t.equal(r.sup.restartChild('uploads'), false, 'not while it runs');

  // Still well within the first 60 s: with the old window this crash would give up again.
  upload.crash();
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(upload.runs, 4, 'restarted: the budget is fresh');
  t.equal(childState(r.sup, 'uploads')?.state, 'running');
});

t.test('restartChild: stopped and failed children only, and only while running', async (t) => {
  const done = new Probe();
  const broken = new Probe();
  const running = new Probe();
  const idle = new Supervisor({ name: 'idle', budget: { maxRestarts: 1, periodMs: 1_000 }, clock: new FakeClock(), log: captureLog().log });
  idle.add({ id: 'x', restart: 'permanent', service: new Probe() });
  t.equal(idle.restartChild('x'), false, 'a supervisor that is not running starts nothing');

  const r = rig(t, [
    ['done', 'transient', done],
    ['broken', 'temporary', broken],
    ['running', 'permanent', running],
  ]);
  done.finish();
  broken.crash();
  running.crash();
  await settle();
  t.equal(r.sup.restartChild('nope'), false, 'unknown id');
  t.equal(r.sup.restartChild('running'), false, 'waiting to restart');
  t.equal(r.sup.restartChild('done'), true, 'stopped');
  t.equal(r.sup.restartChild('broken'), true, 'failed');
  t.equal(done.runs, 2);
  t.equal(broken.runs, 2);
  t.equal(r.sup.status().restartsInWindow, 1, 'requested restarts are not counted against the budget');
});
