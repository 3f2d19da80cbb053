import t from 'tap';
import { LoopMonitor } from '../src/health/loop-monitor.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const turn = () => new Promise((r) => setImmediate(r));
function busy(ms: number): void {
  for (const end = performance.now() + ms; performance.now() < end; );
}

t.test('a blocked loop: overdue now, in the sample, and gone from the next window', async (t) => {
  const m = new LoopMonitor({ tickMs: 50 });
  m.start();
  t.teardown(() => m.stop());
  await sleep(120);
  const idle = m.sample();
  t.ok(Number.isFinite(idle.lagMaxMs) && idle.lagMaxMs >= 0 && idle.lagP99Ms >= 0, 'numbers, even for a short window');
  await sleep(120);
  busy(400);
  // Still inside the blocked turn: only the monitor's own timer can tell
  t.ok(m.lagNowMs() >= 300, `overdue while blocked (${m.lagNowMs()} ms)`);
  await sleep(120);
  const s = m.sample();
  t.ok(s.lagMaxMs >= 300, `the window's max holds the stall (${s.lagMaxMs} ms)`);
  t.ok(s.lagP99Ms <= s.lagMaxMs, 'p99 <= max');
  await sleep(200);
  t.ok(m.lagNowMs() < 300, `recovered: not late now (${m.lagNowMs()} ms)`);
  t.ok(m.sample().lagMaxMs < 300, 'the next window starts afresh');
});

t.test('a spinning loop (turning, but each turn takes long) is late whenever anyone looks', async (t) => {
  const m = new LoopMonitor({ tickMs: 50 });
  m.start();
  t.teardown(() => m.stop());
  await sleep(150);
  // A timer like the watchdog feeder's, asking between the busy turns
  const seen: number[] = [];
  const asker = setInterval(() => seen.push(m.lagNowMs()), 20);
  t.teardown(() => clearInterval(asker));
  for (let i = 0; i < 4; i++) {
    busy(300);
    await turn();
  }
  clearInterval(asker);
  t.ok(seen.length >= 2, `asked between turns (${seen.length} times)`);
  t.ok(
    seen.every((lag) => lag >= 200),
    `every look saw the lag: ${seen.map((s) => Math.round(s)).join(', ')}`,
  );
});

t.test('stopped: no lag reported, and it can start again', async (t) => {
  const m = new LoopMonitor({ tickMs: 50 });
  m.start();
  t.ok(m.running, 'running');
  busy(400);
  t.ok(m.lagNowMs() >= 300, 'late while running');
  m.stop();
  t.notOk(m.running);
  t.equal(m.lagNowMs(), 0, 'a stopped monitor says nothing');
  m.start();
  t.teardown(() => m.stop());
  await sleep(120);
  t.ok(m.lagNowMs() < 300, `restarted without the old stall (${m.lagNowMs()} ms)`);
});

t.test('options are checked', async (t) => {
  t.throws(() => new LoopMonitor({ tickMs: 0 }), RangeError);
});
