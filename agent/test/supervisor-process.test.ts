// Crash and exit paths of the supervision tree in real processes: fixtures/supervised-process.mjs
// runs a tree from the built agent (agent/dist) on the real clock, with services that crash for
// real; these tests fork it and check its exit code and its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';

const FIXTURE = fileURLToPath(new URL('./fixtures/supervised-process.mjs', import.meta.url));
/** Generous for a loaded two-core machine; every scenario normally ends in well under a second. */
const WAIT_MS = 15_000;

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

interface Fixture {
  child: ChildProcess;
  logs: LogLine[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog(pred: (l: LogLine) => boolean, what: string): Promise<LogLine>;
}

function fork(t: Test, args: string[]): Fixture {
  const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      logs.push({ level: 30, msg: line });
    }
    for (const w of waiters) w();
  });
  createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
  // 'close', not 'exit': it comes after stdout has ended, so every log line has been read.
  const exited = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  // Shown only when a test fails, so a passing run stays quiet.
  t.teardown(() => {
    if (!t.passing()) t.comment(`fixture ${args.join(' ')}:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${stderr.join('\n')}`);
  });
  return {
    child,
    logs,
    exited,
    waitForLog(pred, what) {
      return new Promise((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        const check = (): void => {
          const hit = logs.find(pred);
          if (hit) {
            done();
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no log line "${what}" within ${WAIT_MS} ms; stderr: ${stderr.slice(-5).join(' | ')}`));
        }, WAIT_MS);
        waiters.add(check);
        void exited.then(() => {
          if (!waiters.has(check)) return;
          done();
          reject(new Error(`fixture exited before logging "${what}"; stderr: ${stderr.slice(-5).join(' | ')}`));
        });
        check();
      });
    },
  };
}

const ticksOf = (logs: LogLine[], worker: string): number[] => logs.filter((l) => l.msg === 'tick' && l.worker === worker).map((l) => Number(l.n));

t.test('a child that crashes a few times recovers; SIGTERM stops every child and exits 0', async (t) => {
  const f = fork(t, ['recover', '--crashes', '3', '--budget', '5', '--delay', '20']);
  const recovered = await f.waitForLog((l) => l.msg === 'recovered', 'recovered');
  t.equal(recovered.run, 4, 'the fourth run is the good one');
  const crashes = f.logs.filter((l) => l.msg === 'child crashed; restarting');
  t.same(
    crashes.map((l) => [l.child, (l.err as { code?: string }).code]),
    [
      ['flaky', 'E_FLAKY'],
      ['flaky', 'E_FLAKY'],
      ['flaky', 'E_FLAKY'],
    ],
    'three crashes, each logged with its code',
  );
  const seen = ticksOf(f.logs, 'steady').length;
  await f.waitForLog(() => ticksOf(f.logs, 'steady').length >= seen + 3, 'steady ticks on');
  t.same(
    ticksOf(f.logs, 'steady'),
    [...Array(ticksOf(f.logs, 'steady').length).keys()],
    'the sibling was never restarted (its tick count never went back to 0)',
  );
  t.equal(f.child.exitCode, null, 'still running');

  f.child.kill('SIGTERM');
  t.same(await f.exited, { code: 0, signal: null });
  const stoppedWorkers = f.logs.filter((l) => l.msg === 'worker stopped').map((l) => l.worker);
  t.same(stoppedWorkers.sort(), ['flaky', 'steady'], 'both children were told to stop and returned');
  const last = f.logs.find((l) => l.msg === 'tree stopped');
  t.match(last?.status, {
    name: 'root',
    state: 'stopped',
    children: [
      { id: 'flaky', state: 'stopped', restarts: 3, lastCrash: { code: 'E_FLAKY' } },
      { id: 'steady', state: 'stopped', restarts: 0 },
    ],
  });
  t.notOk(
    f.logs.some((l) => /gave up/.test(l.msg)),
    'within its budget: nobody gave up',
  );
});

t.test("the root's budget is spent: the process exits non-zero, naming the supervisor and the last error", async (t) => {
  const f = fork(t, ['give-up', '--budget', '2', '--period', '60000', '--delay', '20']);
  const { code } = await f.exited;
  t.equal(code, 1, 'exits so that init starts the agent again');
  const gaveUp = f.logs.find((l) => l.level === 50 && /^supervisor gave up/.test(l.msg));
  t.ok(gaveUp, 'the supervisor logged why it gave up');
  t.match(gaveUp, { supervisor: 'root', child: 'doomed', lastError: { code: 'E_DOOMED', message: 'doomed failed on run 3' } });
  t.match(gaveUp?.msg, /child "doomed" would exceed the restart budget \(2 in 60000 ms\); last error: E_DOOMED: doomed failed on run 3/);
  const fatal = f.logs.at(-1);
  t.match(fatal, { level: 60, msg: 'supervision tree gave up; exiting', err: { code: 'SUPERVISOR_GAVE_UP', supervisor: 'root' } });
  t.match(fatal?.status, { state: 'gave_up', children: [{ id: 'doomed', state: 'failed', restarts: 2 }, { id: 'steady', state: 'stopped' }] });
  const stopped = f.logs.findIndex((l) => l.msg === 'worker stopped' && l.worker === 'steady');
  t.ok(stopped > f.logs.indexOf(gaveUp!) && stopped < f.logs.length - 1, 'the sibling was stopped after the give-up and before the exit');
});

t.test('a nested supervisor gives up while its sibling keeps ticking; the process stays up', async (t) => {
  const f = fork(t, ['nested', '--budget', '2', '--crashes', '3', '--delay', '20', '--tick', '20']);
  const escalated = await f.waitForLog((l) => l.supervisor === 'root' && l.child === 'uploads' && l.level === 50, 'child gave up');
  t.match(escalated.err, { code: 'SUPERVISOR_GAVE_UP', supervisor: 'uploads', lastCrash: { child: 'uploader', code: 'E_UPLOAD' } });
  t.ok(
    f.logs.some((l) => l.supervisor === 'uploads' && /^supervisor gave up/.test(l.msg)),
    'the nested supervisor logged its own give-up',
  );
  const ticksAtGiveUp = ticksOf(f.logs, 'ticker').length;
  await f.waitForLog(() => ticksOf(f.logs, 'ticker').length >= ticksAtGiveUp + 5, 'five more ticks');
  t.equal(f.child.exitCode, null, 'the process did not exit');
  t.notOk(
    f.logs.some((l) => l.supervisor === 'root' && /^supervisor gave up/.test(l.msg)),
    'the root did not give up',
  );
  t.equal(f.logs.filter((l) => l.msg === 'recovered').length, 0, 'nobody restarted the failed subtree');

  f.child.kill('SIGTERM');
  t.same(await f.exited, { code: 0, signal: null });
  t.match(f.logs.find((l) => l.msg === 'tree stopped')?.status, {
    state: 'stopped',
    children: [
      { id: 'ticker', state: 'stopped', restarts: 0 },
      { id: 'uploads', state: 'failed', restarts: 0, supervisor: { state: 'gave_up', children: [{ id: 'uploader', state: 'failed', restarts: 2 }] } },
    ],
  });
});

t.test('restartChild after a nested give-up (as the health monitor will) runs the subtree again with a fresh budget', async (t) => {
  // Three crashes with a budget of two: the first run of the subtree gives up; the second
  // (fresh budget) gets the fourth run of the uploader, which recovers.
  const f = fork(t, ['nested', '--budget', '2', '--crashes', '3', '--delay', '20', '--heal-after', '50']);
  const healing = await f.waitForLog((l) => l.msg === 'healing', 'healing');
  t.equal(healing.restarted, true);
  const recovered = await f.waitForLog((l) => l.msg === 'recovered', 'recovered');
  t.equal(recovered.run, 4);
  f.child.kill('SIGTERM');
  t.same(await f.exited, { code: 0, signal: null });
  t.match(f.logs.find((l) => l.msg === 'tree stopped')?.status, {
    children: [{ id: 'ticker', restarts: 0 }, { id: 'uploads', state: 'stopped', restarts: 1, supervisor: { state: 'stopped', restartsInWindow: 0 } }],
  });
});
