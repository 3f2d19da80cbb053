import t from 'tap';
import { existsSync, readFileSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { FakeClock } from '../src/lib/clock.js';
import { WatchdogFeeder, watchdogError, type WatchdogErrorCode, type WatchdogFeederOptions } from '../src/health/watchdog.js';

interface LogLine {
  level: number;
  msg: string;
  code?: string;
}

const INTERVAL_MS = 1_000;

function rig(path: string, o: Partial<WatchdogFeederOptions> = {}) {
  const clock = new FakeClock();
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as LogLine) });
  const health = { ok: true, lagMs: 0 };
  const feeder = new WatchdogFeeder({
    path,
    intervalMs: INTERVAL_MS,
    clock,
    log,
    loop: { lagNowMs: () => health.lagMs },
    maxLagMs: 500,
    healthy: () => health.ok,
    ...o,
  });
  const stop = new AbortController();
  let running: Promise<void> | undefined;
  return {
    clock,
    lines,
    health,
    feeder,
    stop,
    start: () => (running = feeder.start(stop.signal)),
    /** Aborts (the planned stop) and waits for start() to end. */
    end: async () => {
      stop.abort();
      await running;
    },
  };
}

const read = (p: string) => readFileSync(p, 'utf8');
/** A skip reason unless `path` is a character device (never the real /dev/watchdog). */
const charDevice = (path: string) => (existsSync(path) && statSync(path).isCharacterDevice() ? false : `no ${path} character device`);

t.test('a heartbeat file: fed at the interval with a changing line', async (t) => {
  const dir = t.testdir({});
  const hb = join(dir, 'heartbeat');
  const r = rig(hb);
  r.start();
  t.equal(read(hb), `ok ${r.clock.now()}\n`, 'fed at once, with a missing file created (the keeper arms on it)');
  const first = read(hb);
  await r.clock.advance(INTERVAL_MS - 1);
  t.equal(r.feeder.status().feeds, 1, 'not before the interval');
  await r.clock.advance(1);
  t.equal(r.feeder.status().feeds, 2);
  t.not(read(hb), first, 'the content changes with every feed');
  await r.clock.advance(3 * INTERVAL_MS);
  t.match(r.feeder.status(), { path: hb, state: 'feeding', feeds: 5, lastFedAt: r.clock.now(), withheldReason: null });
  t.match(read(hb), /^ok \d+\n$/);
  await r.end();
});

t.test('withheld while unhealthy or the loop is late; resumes when both are fine', async (t) => {
  const dir = t.testdir({});
  const hb = join(dir, 'heartbeat');
  const r = rig(hb);
  r.start();
  await r.clock.advance(INTERVAL_MS);
  t.equal(r.feeder.status().feeds, 2);
  r.health.ok = false;
  const before = read(hb);
  await r.clock.advance(3 * INTERVAL_MS);
  t.match(r.feeder.status(), { state: 'withheld', feeds: 2, withheldReason: /not healthy/ });
  t.equal(read(hb), before, 'the heartbeat does not change');
  t.equal(r.lines.filter((l) => /withholding/.test(l.msg)).length, 1, 'said once, not at every tick');
  r.health.ok = true;
  r.health.lagMs = 501;
  await r.clock.advance(INTERVAL_MS);
  t.match(r.feeder.status(), { state: 'withheld', feeds: 2, withheldReason: /event loop 501 ms late \(limit 500 ms\)/ });
  r.health.lagMs = 500;
  await r.clock.advance(INTERVAL_MS);
  t.match(r.feeder.status(), { state: 'feeding', feeds: 3, withheldReason: null }, 'lag at the limit is still fine');
  t.not(read(hb), before);
  await r.end();
});

t.test('a health verdict that throws withholds the feed', async (t) => {
  const dir = t.testdir({});
  const r = rig(join(dir, 'heartbeat'), {
    healthy: () => {
      throw new Error('boom');
    },
  });
  r.start();
  t.match(r.feeder.status(), { state: 'withheld', feeds: 0 });
  await r.end();
});

t.test('stopForReboot writes reset and never feeds again, not even when stopped', async (t) => {
  const dir = t.testdir({});
  const hb = join(dir, 'heartbeat');
  const r = rig(hb);
  r.start();
  await r.clock.advance(INTERVAL_MS);
  r.feeder.stopForReboot('uploads stuck\nfor 3 h');
  t.equal(read(hb), 'reset uploads stuck for 3 h\n', 'one line, the keeper reads its first word');
  r.feeder.stopForReboot('again');
  t.equal(read(hb), 'reset uploads stuck for 3 h\n', 'the first reason stays');
  await r.clock.advance(5 * INTERVAL_MS);
  t.match(r.feeder.status(), { state: 'reboot', feeds: 2, withheldReason: 'uploads stuck\nfor 3 h' });
  t.equal(read(hb), 'reset uploads stuck for 3 h\n', 'no feed after it');
  await r.end();
  t.equal(read(hb), 'reset uploads stuck for 3 h\n', 'the stop does not write "stopped" over it');
  t.equal(r.feeder.status().state, 'reboot');
});

t.test('stopForReboot before start: the file says reset as soon as it is opened', async (t) => {
  const dir = t.testdir({});
  const hb = join(dir, 'heartbeat');
  const r = rig(hb);
  r.feeder.stopForReboot('early');
  r.start();
  t.equal(read(hb), 'reset early\n');
  t.equal(r.feeder.status().feeds, 0);
  await r.end();
});

t.test('the planned close writes "stopped"', async (t) => {
  const dir = t.testdir({});
  const hb = join(dir, 'heartbeat');
  const r = rig(hb);
  r.start();
  await r.end();
  t.equal(read(hb), 'stopped\n');
  t.equal(r.feeder.status().state, 'closed');
  t.equal(r.clock.pendingSleepers, 0, 'no timer left behind');
  await r.feeder.start(r.stop.signal);
  t.equal(r.feeder.status().feeds, 1, 'a start with an aborted signal ends at once, without feeding');
});

t.test('keepArmedOnStop (an escalation restart): the close leaves the last feed in place', async (t) => {
  const dir = t.testdir({});
  const hb = join(dir, 'heartbeat');
  const r = rig(hb);
  r.start();
  const fed = read(hb);
  r.feeder.keepArmedOnStop();
  await r.end();
  t.equal(read(hb), fed, 'no "stopped": the keeper still expects the next beat');
  t.equal(r.feeder.status().state, 'closed');
});

t.test('a second start while running is refused', async (t) => {
  const dir = t.testdir({});
  const r = rig(join(dir, 'heartbeat'));
  r.start();
  await t.rejects(r.feeder.start(new AbortController().signal), { code: 'WATCHDOG_RUNNING' });
  await r.end();
});

t.test('a character device: fed one byte at a time, closed without throwing (/dev/null)', { skip: charDevice('/dev/null') }, async (t) => {
  const r = rig('/dev/null');
  r.start();
  await r.clock.advance(2 * INTERVAL_MS);
  t.match(r.feeder.status(), { state: 'feeding', feeds: 3 });
  await r.end();
  t.equal(r.feeder.status().state, 'closed');
  t.notOk(r.lines.some((l) => l.level >= 50), 'no errors logged');
  t.ok(statSync('/dev/null').isCharacterDevice(), '/dev/null was not replaced by a file');
});

t.test('a device that fails writes (/dev/full): logged once, withheld, not thrown', { skip: charDevice('/dev/full') }, async (t) => {
  const r = rig('/dev/full');
  r.start();
  await r.clock.advance(3 * INTERVAL_MS);
  t.match(r.feeder.status(), { state: 'withheld', feeds: 0, withheldReason: /cannot write \/dev\/full \(ENOSPC\)/ });
  t.equal(r.lines.filter((l) => l.code === 'WATCHDOG_WRITE_FAILED').length, 1, 'one log line for four failed feeds');
  await r.end();
});

t.test('a missing path: logged once, the feeder idles; it is used once it appears', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'not-yet', 'heartbeat');
  const r = rig(path);
  r.start();
  await r.clock.advance(3 * INTERVAL_MS);
  t.match(r.feeder.status(), { state: 'closed', feeds: 0, withheldReason: /does not exist/ });
  t.equal(r.lines.filter((l) => l.code === 'WATCHDOG_MISSING').length, 1, 'logged once');
  t.notOk(existsSync(path), 'a heartbeat file is not created without its directory');
  mkdirSync(join(dir, 'not-yet'));
  await r.clock.advance(INTERVAL_MS);
  t.match(r.feeder.status(), { state: 'feeding', feeds: 1 });
  t.match(read(path), /^ok /);
  await r.end();
});

t.test('a missing device under /dev is never created', async (t) => {
  const r = rig('/dev/vigil-test-no-such-watchdog');
  r.start();
  await r.clock.advance(INTERVAL_MS);
  t.match(r.feeder.status(), { state: 'closed', feeds: 0 });
  t.notOk(existsSync('/dev/vigil-test-no-such-watchdog'));
  await r.end();
});

t.test('a required watchdog that is missing: start rejects with WATCHDOG_MISSING', async (t) => {
  const r = rig('/dev/vigil-test-no-such-watchdog', { required: true });
  await t.rejects(r.start(), { code: 'WATCHDOG_MISSING' });
});

t.test('a directory is not a watchdog: WATCHDOG_UNSUPPORTED', async (t) => {
  const dir = t.testdir({});
  const r = rig(dir, { required: true });
  await t.rejects(r.start(), { code: 'WATCHDOG_UNSUPPORTED' });
  const quiet = rig(dir);
  quiet.start();
  t.match(quiet.feeder.status(), { state: 'closed', withheldReason: /is a directory, not a watchdog/ });
  await quiet.end();
});

t.test('no path configured: idles until stopped, touches nothing', async (t) => {
  const r = rig('');
  r.start();
  await r.clock.advance(3 * INTERVAL_MS);
  t.match(r.feeder.status(), { state: 'closed', feeds: 0, withheldReason: 'no watchdog configured' });
  await r.end();
});

t.test('an existing heartbeat file is rewritten, not appended to', async (t) => {
  const dir = t.testdir({});
  const hb = join(dir, 'heartbeat');
  writeFileSync(hb, 'ok 1\nold junk\n');
  const r = rig(hb);
  r.start();
  t.equal(read(hb), `ok ${r.clock.now()}\n`);
  await r.end();
});

t.test('error codes: retryable or permanent', async (t) => {
  const table: Record<WatchdogErrorCode, boolean> = {
    WATCHDOG_MISSING: false,
    WATCHDOG_UNSUPPORTED: false,
    WATCHDOG_OPEN_FAILED: true,
    WATCHDOG_WRITE_FAILED: true,
  };
  for (const [code, retryable] of Object.entries(table)) {
    const e = watchdogError(code as WatchdogErrorCode, 'x');
    t.equal(e.code, code);
    t.equal(e.retryable, retryable, code);
  }
});
