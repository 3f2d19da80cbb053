import t from 'tap';
import { EventEmitter } from 'node:events';
import { onStopSignals } from '../src/lib/stop-signals.js';
import { silentLogger } from '../src/lib/logger.js';

function rig(deadlineMs = 60_000) {
  const target = new EventEmitter();
  const stop = new AbortController();
  const exits: number[] = [];
  const remove = onStopSignals(stop, { log: silentLogger(), deadlineMs, exit: (c) => exits.push(c), target });
  return { target, stop, exits, remove };
}

t.test('first signal stops gracefully; a second exits at once with 130', async (t) => {
  const r = rig();
  r.target.emit('SIGTERM', 'SIGTERM');
  t.ok(r.stop.signal.aborted, 'graceful stop requested');
  t.same(r.exits, [], 'no exit yet');
  r.target.emit('SIGINT', 'SIGINT');
  t.same(r.exits, [130]);
  r.remove();
});

t.test('a stop that misses its deadline exits 1', async (t) => {
  const r = rig(30);
  r.target.emit('SIGINT', 'SIGINT');
  await new Promise((res) => setTimeout(res, 80));
  t.same(r.exits, [1]);
  r.remove();
});

t.test('a stop that finishes in time removes the deadline', async (t) => {
  const r = rig(30);
  r.target.emit('SIGTERM', 'SIGTERM');
  r.remove();
  await new Promise((res) => setTimeout(res, 80));
  t.same(r.exits, []);
  t.equal(r.target.listenerCount('SIGTERM'), 0);
});
