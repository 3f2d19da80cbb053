import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { FakeClock } from '../src/lib/clock.js';
import { openDb } from '../src/store/db.js';
import { Kv } from '../src/store/kv.js';
import { EXIT_CRASH, RUN_STATE_KEY, RunState, describeCrash, installCrashHandlers } from '../src/health/run-state.js';

const CRASH_FIXTURE = fileURLToPath(new URL('./fixtures/crash-process.mjs', import.meta.url));

/** A device: a database on "/data", a boot id the test can change (a reboot), an uptime. */
function device(t: Test) {
  const dir = t.testdir({});
  const files = {
    db: join(dir, 'agent.db'),
    bootId: join(dir, 'boot_id'),
    uptime: join(dir, 'uptime'),
    bootstatus: join(dir, 'bootstatus'),
    resetNote: join(dir, 'watchdog-reset'),
  };
  const clock = new FakeClock();
  let boots = 0;
  const reboot = () => writeFileSync(files.bootId, `boot-${++boots}\n`);
  reboot();
  writeFileSync(files.uptime, '12345.67 4000.00\n');
  writeFileSync(files.bootstatus, '0\n');
  const open = [] as ReturnType<typeof openDb>[];
  t.teardown(() => open.forEach((db) => db.open && db.close()));
  /** One agent start: opens the database afresh, as a new process would. */
  const agent = (o: { bootstatus?: boolean } = {}) => {
    const db = openDb(files.db);
    open.push(db);
    const rs = new RunState({
      kv: new Kv(db),
      clock,
      bootIdPath: files.bootId,
      uptimePath: files.uptime,
      resetNotePath: files.resetNote,
      ...(o.bootstatus === false ? {} : { watchdogBootstatusPath: files.bootstatus }),
    });
    return { rs, close: () => db.close() };
  };
  return { files, clock, reboot, agent };
}

t.test('first boot, then a planned stop and a reboot: planned', async (t) => {
  const d = device(t);
  const a = d.agent();
  t.same(a.rs.begin(), { lastReboot: { reason: 'first_boot', detail: null }, lastExit: null, rebooted: true });
  a.rs.markPlannedStop();
  a.close();
  d.reboot();
  const b = d.agent();
  t.match(b.rs.begin(), { lastReboot: { reason: 'planned', detail: null }, lastExit: { reason: 'planned' }, rebooted: true });
});

t.test('marker still running and a new boot: power loss', async (t) => {
  const d = device(t);
  d.agent().rs.begin();
  d.reboot();
  const s = d.agent().rs.begin();
  t.same(s.lastReboot, { reason: 'power_loss', detail: null });
  t.match(s.lastExit, { reason: 'killed', detail: /device went down/ });
  t.equal(s.rebooted, true);
});

t.test('marker running, a new boot, and the watchdog says it reset the card: watchdog', async (t) => {
  const d = device(t);
  d.agent().rs.begin();
  d.reboot();
  writeFileSync(d.files.bootstatus, '32\n'); // WDIOF_CARDRESET
  t.same(d.agent().rs.begin().lastReboot, { reason: 'watchdog', detail: 'the watchdog reset the card (bootstatus 32)' });
});

t.test('marker running, a new boot, and the keeper left its reason: watchdog, read once', async (t) => {
  const d = device(t);
  d.agent().rs.begin();
  writeFileSync(d.files.resetNote, 'no agent heartbeat for 181s\n');
  t.equal(d.agent().rs.begin().lastReboot.reason, 'first_boot', 'not read within the same boot (the reset has not happened yet)');
  d.reboot();
  t.same(d.agent().rs.begin().lastReboot, { reason: 'watchdog', detail: 'the watchdog keeper reset the board: no agent heartbeat for 181s' });
  t.notOk(existsSync(d.files.resetNote), 'the note is consumed');
  d.reboot();
  t.equal(d.agent().rs.begin().lastReboot.reason, 'power_loss', 'the next boot is not blamed on it');
});

t.test('an unreadable or absent bootstatus is no evidence: power loss', async (t) => {
  const d = device(t);
  d.agent().rs.begin();
  d.reboot();
  writeFileSync(d.files.bootstatus, 'garbage\n');
  t.equal(d.agent().rs.begin().lastReboot.reason, 'power_loss');
  const e = device(t);
  e.agent().rs.begin();
  e.reboot();
  writeFileSync(e.files.bootstatus, '32\n');
  t.equal(e.agent({ bootstatus: false }).rs.begin().lastReboot.reason, 'power_loss', 'no bootstatus path given');
});

t.test('markReboot (escalation step 3) and a new boot: watchdog, with the reason', async (t) => {
  const d = device(t);
  const a = d.agent();
  a.rs.begin();
  a.rs.markReboot('uploads stuck for 3 h');
  d.reboot();
  const s = d.agent().rs.begin();
  t.same(s.lastReboot, { reason: 'watchdog', detail: 'uploads stuck for 3 h' });
  t.match(s.lastExit, { reason: 'reboot', detail: 'uploads stuck for 3 h' });
});

t.test('a crash and a new boot before the agent ran again: crash', async (t) => {
  const d = device(t);
  const a = d.agent();
  a.rs.begin();
  a.rs.markCrash('TypeError: x is undefined');
  d.reboot();
  t.same(d.agent().rs.begin().lastReboot, { reason: 'crash', detail: 'TypeError: x is undefined' });
});

t.test('same boot, marker running: the agent was killed; the boot reason is kept', async (t) => {
  const d = device(t);
  d.agent().rs.begin();
  d.reboot();
  const first = d.agent();
  t.equal(first.rs.begin().lastReboot.reason, 'power_loss');
  const startedAt = d.clock.now();
  await d.clock.advance(60_000);
  // SIGKILL or the OOM killer: nothing is written; init starts the agent again
  const s = d.agent().rs.begin();
  t.same(s.lastReboot, { reason: 'power_loss', detail: null }, 'still why this boot happened');
  t.match(s.lastExit, { reason: 'killed', at: startedAt });
  t.equal(s.rebooted, false);
});

t.test('same boot: markRestart, markCrash, markPlannedStop are the last exit', async (t) => {
  const d = device(t);
  const a = d.agent();
  t.equal(a.rs.begin().lastReboot.reason, 'first_boot');
  await d.clock.advance(1_000);
  a.rs.markRestart('event loop lag 7 s twice');
  const b = d.agent().rs;
  t.match(b.begin(), {
    lastReboot: { reason: 'first_boot' },
    lastExit: { reason: 'restart', detail: 'event loop lag 7 s twice', at: d.clock.now() },
    rebooted: false,
  });
  b.markCrash('x'.repeat(2_000));
  const c = d.agent().rs;
  const s = c.begin();
  t.equal(s.lastExit?.reason, 'crash');
  t.ok(s.lastExit!.detail!.length <= 500, 'a long detail is clipped');
  c.markPlannedStop();
  t.match(d.agent().rs.begin(), { lastReboot: { reason: 'first_boot' }, lastExit: { reason: 'planned', detail: null } });
});

t.test('begin() answers once per process; a mark before begin() keeps the boot reason', async (t) => {
  const d = device(t);
  d.agent().rs.begin();
  d.reboot();
  const a = d.agent().rs;
  a.markCrash('during start-up'); // crashed before anything called begin()
  t.equal(a.begin().lastReboot.reason, 'power_loss', 'computed before the crash was written');
  t.equal(a.begin().lastReboot.reason, 'power_loss', 'a second call answers the same');
  const s = d.agent().rs.begin();
  t.match(s, { lastReboot: { reason: 'power_loss' }, lastExit: { reason: 'crash', detail: 'during start-up' } });
});

t.test('kept across reopening the database, and an unreadable record is unknown', async (t) => {
  const d = device(t);
  const a = d.agent();
  a.rs.begin();
  a.rs.markReboot('disk full');
  a.close();
  d.reboot();
  const b = d.agent();
  t.equal(b.rs.begin().lastReboot.reason, 'watchdog');
  b.close();
  // Two more starts within the boot, each from a freshly opened database
  for (let i = 0; i < 2; i++) {
    const c = d.agent();
    t.same(c.rs.begin().lastReboot, { reason: 'watchdog', detail: 'disk full' }, `restart ${i + 1} in the same boot`);
    c.close();
  }
  const db = openDb(d.files.db);
  new Kv(db).set(RUN_STATE_KEY, Buffer.from('{not json'), 0);
  db.close();
  t.match(d.agent().rs.begin(), { lastReboot: { reason: 'unknown' }, lastExit: null });
});

t.test('uptime from /proc/uptime, 0 when unreadable', async (t) => {
  const d = device(t);
  t.equal(d.agent().rs.uptimeS(), 12345);
  writeFileSync(d.files.uptime, 'nonsense\n');
  t.equal(d.agent().rs.uptimeS(), 0);
  const db = openDb(join(t.testdir({}), 'x.db'));
  t.teardown(() => db.close());
  t.equal(new RunState({ kv: new Kv(db), clock: d.clock, uptimePath: '/nonexistent/uptime' }).uptimeS(), 0);
});

t.test('describeCrash: name, code, message', async (t) => {
  t.equal(describeCrash(new TypeError('bad')), 'TypeError: bad');
  t.equal(describeCrash(Object.assign(new Error('gone'), { code: 'ENOENT' })), 'Error [ENOENT]: gone');
  t.equal(describeCrash('a string'), 'non-error thrown: a string');
});

t.test('crash handlers: record, log, exit 70; a second error exits at once', async (t) => {
  const target = new EventEmitter();
  const marks: string[] = [];
  const exits: number[] = [];
  const lines: { level: number; msg: string }[] = [];
  const log = pino({}, { write: (s: string) => lines.push(JSON.parse(s) as { level: number; msg: string }) });
  const remove = installCrashHandlers({ markCrash: (d) => marks.push(d) }, log, (c) => exits.push(c), target);
  target.emit('unhandledRejection', new RangeError('no'), Promise.resolve());
  t.same(marks, ['RangeError: no']);
  t.same(exits, [EXIT_CRASH]);
  t.equal(EXIT_CRASH, 70);
  t.ok(lines.some((l) => l.level === 60 && /crashed/.test(l.msg)), 'a fatal log line');
  target.emit('uncaughtException', new Error('again'), 'uncaughtException');
  t.same(exits, [EXIT_CRASH, EXIT_CRASH]);
  t.equal(marks.length, 1, 'recorded once');
  remove();
  t.equal(target.listenerCount('uncaughtException') + target.listenerCount('unhandledRejection'), 0);
});

t.test('crash handlers: a record that cannot be written still exits 70', async (t) => {
  const target = new EventEmitter();
  const exits: number[] = [];
  installCrashHandlers(
    {
      markCrash: () => {
        throw new Error('SQLITE_IOERR');
      },
    },
    pino({ level: 'silent' }),
    (c) => exits.push(c),
    target,
  );
  target.emit('uncaughtException', new Error('x'), 'uncaughtException');
  t.same(exits, [EXIT_CRASH]);
});

for (const how of ['throw', 'reject'] as const) {
  t.test(`a forked agent whose code ${how === 'throw' ? 'throws asynchronously' : 'leaves a rejection unhandled'}: exits 70, the kv says crash`, async (t) => {
    const d = device(t);
    const child = spawn(process.execPath, [CRASH_FIXTURE, d.files.db, d.files.bootId, how], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    if (code !== EXIT_CRASH) t.comment(out);
    t.equal(code, EXIT_CRASH, 'exits with EXIT_CRASH');
    t.match(out, /"level":60.*agent crashed/, 'the fatal line is out before the exit');
    const s = d.agent().rs.begin();
    t.match(s, { lastReboot: { reason: 'first_boot' }, lastExit: { reason: 'crash', detail: how === 'throw' ? 'Error [FIXTURE_BOOM]: boom' : 'Error [FIXTURE_BOOM]: rejected' }, rebooted: false });
  });
}
