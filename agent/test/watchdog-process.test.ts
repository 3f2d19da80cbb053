// The must-show of the watchdog feeding: a real agent process whose event loop is blocked, or
// spinning (turning, but seconds per turn), stops feeding its watchdog stand-in within the
// configured time. The fixture (fixtures/watchdog-process.mjs) runs the built WatchdogFeeder and
// LoopMonitor; this test watches the heartbeat file from outside, as the keeper does.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../../test/helpers/tmp.js';
import { waitFor } from '../../test/helpers/wait.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/watchdog-process.mjs', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * How long the test watches the spinning process. A spinning loop runs its timers every
 * other turn at first (the turn started from an I/O callback and the immediate it queues share
 * one loop iteration), then after every turn: 7 s see them run at least twice.
 */
const OBSERVE_MS = 7_000;
/** A blocked loop shows nothing at all: seconds are enough to see that. */
const BLOCK_OBSERVE_MS = 3_000;

interface Settings {
  FEED_MS: number;
  MAX_LAG_MS: number;
  SPIN_CHUNK_MS: number;
}

interface Status {
  at: number;
  state: string;
  feeds: number;
  withheldReason: string | null;
}

/**
 * The epoch ms of the last feed written into the heartbeat ("ok <ms>"). The feeder rewrites the
 * file in place (as the keeper's contract allows), so a read can fall between truncate and write:
 * read again.
 */
async function lastFeed(hb: string): Promise<number> {
  for (let i = 0; ; i++) {
    const content = readFileSync(hb, 'utf8');
    const m = /^ok (\d+)\n$/.exec(content);
    if (m) return Number(m[1]);
    if (i >= 20) throw new Error(`the heartbeat holds ${JSON.stringify(content)}, not a feed`);
    await sleep(5);
  }
}

async function startFixture(t: Test) {
  const dir = await tmpDir(t, 'vigil-wdt-proc-');
  const hb = join(dir, 'heartbeat');
  const statusFile = join(dir, 'status');
  const child = spawn(process.execPath, [FIXTURE, hb, statusFile], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  await waitFor(() => lines.some((l) => l.startsWith('ready ')) || child.exitCode !== null, 10_000, 'the fixture to start');
  const ready = lines.find((l) => l.startsWith('ready '));
  if (!ready) throw new Error(`the fixture exited (${child.exitCode}) before it was ready`);
  const settings = JSON.parse(ready.slice('ready '.length)) as Settings;
  const status = (): Status => JSON.parse(readFileSync(statusFile, 'utf8')) as Status;
  /** Sends the command; resolves with the fixture's epoch ms just before it misbehaved. */
  const misbehave = async (cmd: 'block' | 'spin'): Promise<number> => {
    child.stdin.write(`${cmd}\n`);
    await waitFor(() => lines.some((l) => l.startsWith('misbehaving ')), 5_000, 'the fixture to misbehave');
    return Number(lines.find((l) => l.startsWith('misbehaving '))!.slice('misbehaving '.length));
  };
  return { hb, statusFile, settings, status, misbehave };
}

/** Watches the heartbeat for `ms`: each moment its content changed (test's clock) and the last feed. */
async function watch(hb: string, statusFile: string, ms: number) {
  const changes: number[] = [];
  const statusChanges: number[] = [];
  let content = readFileSync(hb, 'utf8');
  let status = readFileSync(statusFile, 'utf8');
  for (const end = Date.now() + ms; Date.now() < end; await sleep(25)) {
    const c = readFileSync(hb, 'utf8');
    if (c !== content && c !== '') {
      content = c;
      changes.push(Date.now());
    }
    const s = readFileSync(statusFile, 'utf8');
    if (s !== status && s !== '') {
      status = s;
      statusChanges.push(Date.now());
    }
  }
  return { changes, statusChanges };
}

async function fedBefore(t: Test, f: Awaited<ReturnType<typeof startFixture>>): Promise<void> {
  await sleep(1_200);
  const s = f.status();
  t.ok(s.feeds >= 3, `fed before it misbehaved (${s.feeds} feeds)`);
  t.equal(s.state, 'feeding');
  const at = await lastFeed(f.hb);
  t.ok(Date.now() - at < 3 * f.settings.FEED_MS, `the last feed is recent (${Date.now() - at} ms ago)`);
}

t.test('a blocked event loop: the stand-in is no longer fed', async (t) => {
  const f = await startFixture(t);
  await fedBefore(t, f);
  const since = await f.misbehave('block');
  const sent = Date.now();
  const w = await watch(f.hb, f.statusFile, BLOCK_OBSERVE_MS);
  const last = await lastFeed(f.hb);
  t.ok(last <= since + f.settings.MAX_LAG_MS, `the last feed (${last - since} ms after the block began) is within ${f.settings.MAX_LAG_MS} ms`);
  t.same(
    w.changes.filter((at) => at > sent + f.settings.MAX_LAG_MS),
    [],
    'the heartbeat never changes afterwards',
  );
  t.same(
    w.statusChanges.filter((at) => at > sent + f.settings.FEED_MS),
    [],
    'no timer of the process runs any more (it is blocked, not slow)',
  );
  const mtime = statSync(f.hb).mtimeMs;
  await sleep(500);
  t.equal(statSync(f.hb).mtimeMs, mtime, 'the mtime (what the keeper watches) stands still');
});

t.test('a spinning event loop (turning, seconds per turn): the stand-in is no longer fed', async (t) => {
  const f = await startFixture(t);
  await fedBefore(t, f);
  const since = await f.misbehave('spin');
  const sent = Date.now();
  const w = await watch(f.hb, f.statusFile, OBSERVE_MS);
  const last = await lastFeed(f.hb);
  t.ok(last <= since + f.settings.MAX_LAG_MS, `the last feed (${last - since} ms after the spinning began) is within ${f.settings.MAX_LAG_MS} ms`);
  t.same(
    w.changes.filter((at) => at > sent + f.settings.MAX_LAG_MS),
    [],
    'the heartbeat never changes afterwards',
  );
  t.ok(w.statusChanges.length >= 2, `the loop still turns: its timers ran ${w.statusChanges.length} times`);
  const s = f.status();
  t.equal(s.state, 'withheld', 'the feeder ran and chose not to feed');
  t.match(s.withheldReason, /event loop \d+ ms late \(limit 1000 ms\)/);
  const mtime = statSync(f.hb).mtimeMs;
  await sleep(2 * f.settings.SPIN_CHUNK_MS);
  t.equal(statSync(f.hb).mtimeMs, mtime, 'the mtime (what the keeper watches) stands still');
});
