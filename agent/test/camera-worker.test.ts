// Unit: the CameraWorker's rhythm, skips, timeouts, failures and hand-over, on a fake clock
// with an injected capture function (no ffmpeg).
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { pino } from 'pino';
import { CAPTURE_WATCHDOG_GRACE_MS, CameraWorker, type CameraConfig } from '../src/capture/camera-worker.js';
import { captureError } from '../src/capture/capture-errors.js';
import type { CaptureFunction, FrameCaptureRequest, FrameCaptureResult } from '../src/capture/ffmpeg-capture.js';
import type { Capture, CaptureSink } from '../src/capture/types.js';
import { FakeClock } from '../src/lib/clock.js';
import { VigilError } from '../src/lib/errors.js';
import { silentLogger } from '../src/lib/logger.js';
import { tmpDir } from '../../test/helpers/tmp.js';

const DHASH = 'ab'.repeat(512);

function camera(over: Partial<CameraConfig> = {}): CameraConfig {
  return { id: 'cam1', name: 'Front door', url: 'rtsp://10.0.0.7/s1', transport: 'tcp', intervalMs: 30_000, captureTimeoutMs: 120_000, ...over };
}

/** Polls a condition that depends on real I/O (mkdir, rm) finishing. */
async function until(cond: () => boolean, what = 'condition', ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

interface Call {
  req: FrameCaptureRequest;
  /** clock.now() when the capture was asked for. */
  at: number;
  succeed(): Promise<void>;
  fail(err: Error): void;
}

/** A capture function whose calls the test settles by hand; it honours the abort signal. */
function fakeCapture(clock: FakeClock): { fn: CaptureFunction; calls: Call[] } {
  const calls: Call[] = [];
  const fn: CaptureFunction = (req) =>
    new Promise<FrameCaptureResult>((resolve, reject) => {
      req.signal?.addEventListener('abort', () => reject(captureError('CAPTURE_ABORTED', 'aborted')), { once: true });
      calls.push({
        req,
        at: clock.now(),
        succeed: async () => {
          const files = { original: join(req.workDir, 'original.jpg'), compressed: join(req.workDir, 'compressed.jpg') };
          await writeFile(files.original, 'o');
          await writeFile(files.compressed, 'c');
          resolve({ dhash: DHASH, files, elapsedMs: 1 });
        },
        fail: reject,
      });
    });
  return { fn, calls };
}

/** A sink that moves the files into a spool dir, or throws `error` when set. */
function fakeSink(spool: string): { sink: CaptureSink; got: Capture[]; error: Error | null } {
  const state = {
    got: [] as Capture[],
    error: null as Error | null,
    sink: async (c: Capture): Promise<void> => {
      if (state.error) throw state.error;
      await mkdir(spool, { recursive: true });
      const n = state.got.length;
      await rename(c.files.original, join(spool, `${n}-o.jpg`));
      await rename(c.files.compressed, join(spool, `${n}-c.jpg`));
      state.got.push(c);
    },
  };
  return state;
}

async function setup(t: Test, over: Partial<CameraConfig> = {}, clock = new FakeClock()) {
  const dir = await tmpDir(t);
  const workDir = join(dir, 'work');
  const fake = fakeCapture(clock);
  const sink = fakeSink(join(dir, 'spool'));
  const worker = new CameraWorker({ camera: camera(over), clock, log: silentLogger(), workDir, sink: sink.sink, capture: fake.fn });
  const ac = new AbortController();
  const done = worker.start(ac.signal);
  t.teardown(async () => {
    ac.abort();
    await done;
  });
  await until(() => fake.calls.length === 1, 'the first capture');
  const leftovers = async (): Promise<string[]> => (await readdir(workDir)).filter((n) => n.startsWith('cap-'));
  return { clock, fake, sink, worker, ac, done, workDir, leftovers };
}

t.test('fixed rate: the next tick is due one interval after the last, however long the capture took', async (t) => {
  const { clock, fake, sink, worker } = await setup(t);
  const t0 = fake.calls[0]!.at;
  await clock.advance(10_000); // the capture takes 10 s
  await fake.calls[0]!.succeed();
  await until(() => sink.got.length === 1 && !worker.status().running, 'first capture cycle done');
  await clock.advance(19_999);
  t.equal(fake.calls.length, 1, 'not yet at 29.999 s');
  await clock.advance(1);
  await until(() => fake.calls.length === 2, 'second capture');
  t.equal(fake.calls[1]!.at - t0, 30_000, 'second capture at 30 s, not 40 s');
  await fake.calls[1]!.succeed();
  await until(() => sink.got.length === 2 && !worker.status().running, 'second capture cycle done');
  await clock.advance(30_000);
  await until(() => fake.calls.length === 3, 'third capture');
  t.equal(fake.calls[2]!.at - t0, 60_000, 'third at 60 s');
  t.same(
    sink.got.map((c) => c.capturedAt - t0),
    [0, 30_000],
    'capturedAt is clock.now() at the start of each capture',
  );
  const s = worker.status();
  t.equal(s.capturesOk, 2);
  t.equal(s.ticks, 3);
  t.equal(s.skippedTicks, 0);
  t.equal(s.lastSuccessAt, 30_000, 'lastSuccessAt on the monotonic clock');
  t.equal(s.running, true, 'third capture in flight');
});

t.test('a tick that finds the previous capture running is skipped and counted', async (t) => {
  const { clock, fake, sink, worker } = await setup(t);
  const t0 = fake.calls[0]!.at;
  await clock.advance(30_000);
  await clock.advance(30_000);
  t.equal(fake.calls.length, 1, 'no second capture while the first runs');
  t.equal(worker.status().skippedTicks, 2);
  t.equal(worker.status().running, true);
  await fake.calls[0]!.succeed();
  await until(() => sink.got.length === 1 && !worker.status().running, 'first done');
  await clock.advance(30_000);
  await until(() => fake.calls.length === 2, 'next capture');
  t.equal(fake.calls[1]!.at - t0, 90_000, 'the rhythm held: next capture on the 90 s tick');
  t.equal(worker.status().ticks, 4);
});

t.test('a capture that outlives its timeout is killed by the worker on the clock: CAPTURE_TIMEOUT, files gone, the cycle goes on', async (t) => {
  const { clock, fake, worker, leftovers } = await setup(t, { captureTimeoutMs: 45_000 });
  await clock.advance(30_000); // skipped tick
  await clock.advance(15_000 + CAPTURE_WATCHDOG_GRACE_MS - 1);
  t.equal(worker.status().running, true, 'the capture function gets its own timeout first');
  await clock.advance(1); // the worker's watchdog fires
  await until(() => worker.status().failures.CAPTURE_TIMEOUT === 1, 'timeout recorded');
  t.ok(fake.calls[0]!.req.signal?.aborted, 'the capture was told to stop (ffmpeg killed)');
  await until(() => !worker.status().running, 'capture settled');
  t.same(await leftovers(), [], 'work dir cleaned');
  const s = worker.status();
  t.equal(s.lastError?.code, 'CAPTURE_TIMEOUT');
  t.equal(s.lastError?.stage, 'capture');
  t.match(s.lastError?.message, /killed by the worker/);
  t.equal(s.skippedTicks, 1);
  await clock.advance(15_000 - CAPTURE_WATCHDOG_GRACE_MS);
  await until(() => fake.calls.length === 2, 'next capture at 60 s');
});

t.test('failures are counted by code and the loop carries on to a success', async (t) => {
  const { clock, fake, worker, leftovers } = await setup(t);
  fake.calls[0]!.fail(captureError('CAPTURE_FAILED', 'ffmpeg exited with code 1'));
  await until(() => worker.status().consecutiveFailures === 1 && !worker.status().running, 'first failure');
  await clock.advance(30_000);
  await until(() => fake.calls.length === 2, 'second capture');
  fake.calls[1]!.fail(captureError('CAPTURE_CORRUPT', 'original truncated'));
  await until(() => worker.status().consecutiveFailures === 2 && !worker.status().running, 'second failure');
  await clock.advance(30_000);
  await until(() => fake.calls.length === 3, 'third capture');
  fake.calls[2]!.fail(new Error('something without a code'));
  await until(() => worker.status().consecutiveFailures === 3 && !worker.status().running, 'third failure');
  await clock.advance(30_000);
  await until(() => fake.calls.length === 4, 'fourth capture');
  await fake.calls[3]!.succeed();
  await until(() => worker.status().capturesOk === 1, 'success');
  const s = worker.status();
  t.same(s.failures, { CAPTURE_FAILED: 2, CAPTURE_CORRUPT: 1 }, 'an error without a code counts as CAPTURE_FAILED');
  t.equal(s.consecutiveFailures, 0, 'reset by the success');
  t.equal(s.lastSuccessAt, 90_000);
  t.equal(s.lastError?.message, 'something without a code', 'lastError kept for the report');
  await until(() => !worker.status().running, 'capture cycle finished');
  t.same(await leftovers(), [], 'no work dirs left');
});

t.test('a sink that throws (disk full): logged, files deleted, counted, next capture goes on', async (t) => {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
  const clock = new FakeClock();
  const dir = await tmpDir(t);
  const workDir = join(dir, 'work');
  const fake = fakeCapture(clock);
  const sink = fakeSink(join(dir, 'spool'));
  sink.error = new VigilError('DISK_FULL', 'spool: ENOSPC');
  const worker = new CameraWorker({ camera: camera(), clock, log, workDir, sink: sink.sink, capture: fake.fn });
  const ac = new AbortController();
  const done = worker.start(ac.signal);
  t.teardown(async () => {
    ac.abort();
    await done;
  });
  await until(() => fake.calls.length === 1);
  await fake.calls[0]!.succeed();
  await until(() => worker.status().sinkFailures.DISK_FULL === 1 && !worker.status().running, 'sink failure counted');
  const files = fake.calls[0]!.req.workDir;
  await until(() => !existsSync(files), 'work files deleted');
  const s = worker.status();
  t.equal(s.capturesOk, 0);
  t.same(s.failures, {}, 'not a camera failure');
  t.equal(s.lastError?.stage, 'sink');
  t.equal(s.lastError?.code, 'DISK_FULL');
  const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string; code?: string; camera?: string });
  t.ok(
    logged.some((l) => l.level === 50 && l.code === 'DISK_FULL' && l.camera === 'cam1' && /outbox refused/.test(l.msg)),
    'logged at error level with the code and camera',
  );

  sink.error = null;
  await clock.advance(30_000);
  await until(() => fake.calls.length === 2);
  await fake.calls[1]!.succeed();
  await until(() => worker.status().capturesOk === 1, 'next capture accepted');
  t.equal(sink.got[0]!.camera, 'cam1');
  t.equal(sink.got[0]!.dhash, DHASH);
});

t.test('abort stops the worker promptly, killing the running capture', async (t) => {
  const { fake, worker, ac, done, leftovers } = await setup(t);
  ac.abort();
  await done;
  t.ok(fake.calls[0]!.req.signal?.aborted, 'the capture got the abort (ffmpeg SIGKILLed)');
  const s = worker.status();
  t.equal(s.running, false);
  t.same(s.failures, {}, 'stopping is not a failure');
  t.same(await leftovers(), [], 'work dir cleaned');
  await t.rejects(worker.start(new AbortController().signal), /already started/, 'a worker runs once');
});

t.test('abort while idle between ticks resolves at once', async (t) => {
  const { clock, fake, sink, ac, done } = await setup(t);
  await fake.calls[0]!.succeed();
  await until(() => sink.got.length === 1);
  ac.abort();
  await done;
  t.equal(clock.pendingSleepers, 0, 'no timers left behind');
});

t.test('timeouts handed to ffmpeg are converted to real time (drills run on a scaled clock)', async (t) => {
  class FastClock extends FakeClock {
    override toRealMs(ms: number): number {
      return ms / 50;
    }
  }
  const clock = new FastClock();
  const dir = await tmpDir(t);
  const fake = fakeCapture(clock);
  const worker = new CameraWorker({
    camera: camera({ captureTimeoutMs: 100_000, transport: 'udp', username: 'u', password: 'p' }),
    clock,
    log: silentLogger(),
    workDir: dir,
    sink: fakeSink(join(dir, 'spool')).sink,
    capture: fake.fn,
    rtspTimeoutMs: 10_000,
    ffmpegPath: '/opt/ffmpeg',
  });
  const ac = new AbortController();
  const done = worker.start(ac.signal);
  await until(() => fake.calls.length === 1);
  const req = fake.calls[0]!.req;
  t.equal(req.timeoutMs, 2_000, 'hard timeout in real ms');
  t.equal(req.ioTimeoutMs, 200, '-timeout in real ms');
  t.match(req, { url: 'rtsp://10.0.0.7/s1', transport: 'udp', username: 'u', password: 'p', ffmpegPath: '/opt/ffmpeg' });
  ac.abort();
  await done;
});

t.test('credentials never reach the logs or the status', async (t) => {
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(s) });
  const clock = new FakeClock();
  const dir = await tmpDir(t);
  const fake = fakeCapture(clock);
  const worker = new CameraWorker({
    camera: camera({ url: 'rtsp://admin:hunter2@10.0.0.7/s1', password: 'hunter2' }),
    clock,
    log,
    workDir: dir,
    sink: fakeSink(join(dir, 'spool')).sink,
    capture: fake.fn,
  });
  const ac = new AbortController();
  const done = worker.start(ac.signal);
  await until(() => fake.calls.length === 1);
  fake.calls[0]!.fail(captureError('CAPTURE_FAILED', 'rtsp://admin:hunter2@10.0.0.7/s1: 401 Unauthorized (tried hunter2)'));
  await until(() => worker.status().consecutiveFailures === 1);
  ac.abort();
  await done;
  t.ok(lines.length >= 2, 'something was logged');
  t.notMatch(lines.join('\n'), 'hunter2', 'no password in the logs');
  t.notMatch(worker.status().lastError?.message ?? '', 'hunter2', 'no password in the status');
  t.match(worker.status().lastError?.message, '401 Unauthorized', 'the reason is kept');
});

t.test('leftover capture dirs from a crash are swept at start; other files are kept', async (t) => {
  const dir = await tmpDir(t);
  await mkdir(join(dir, 'cap-123-1'), { recursive: true });
  await writeFile(join(dir, 'cap-123-1', 'original.jpg'), 'partial');
  await writeFile(join(dir, 'notes.txt'), 'keep');
  const clock = new FakeClock();
  const fake = fakeCapture(clock);
  const worker = new CameraWorker({ camera: camera(), clock, log: silentLogger(), workDir: dir, sink: fakeSink(join(dir, 'spool')).sink, capture: fake.fn });
  const ac = new AbortController();
  const done = worker.start(ac.signal);
  await until(() => fake.calls.length === 1);
  t.notOk(existsSync(join(dir, 'cap-123-1')), 'stale capture dir removed');
  t.ok(existsSync(join(dir, 'notes.txt')), 'unrelated file kept');
  ac.abort();
  await done;
});

t.test('bad intervals are refused up front', async (t) => {
  const opts = { clock: new FakeClock(), log: silentLogger(), workDir: '/nonexistent', sink: async () => undefined };
  t.throws(() => new CameraWorker({ ...opts, camera: camera({ intervalMs: 0 }) }), /intervalMs must be > 0/);
  t.throws(() => new CameraWorker({ ...opts, camera: camera({ captureTimeoutMs: Number.NaN }) }), /captureTimeoutMs/);
});
