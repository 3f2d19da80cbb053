// Integration: two CameraWorkers with real ffmpeg on the real clock, one on the RTSP test
// camera and one on a camera that accepts TCP and never sends. The hung one times out every
// cycle; the healthy one keeps its rhythm; stopping kills whatever ffmpeg still runs.
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { jpegProblem } from '@vigil/protocol';
import { CameraWorker, type CameraConfig } from '../src/capture/camera-worker.js';
import { captureFrame, type CaptureFunction } from '../src/capture/ffmpeg-capture.js';
import type { Capture } from '../src/capture/types.js';
import { systemClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { startRtspCamera, startSilentCamera } from '../../test/helpers/rtsp-camera.js';
import { tmpDir } from '../../test/helpers/tmp.js';
import { isAlive } from '../../test/helpers/process.js';

const INTERVAL_MS = 1_500;
const RUN_MS = 7_800;


t.test('a hung camera does not disturb a healthy one; stop kills the hung ffmpeg', async (t) => {
  const rtsp = await startRtspCamera(t, { size: '640x360' });
  const silent = await startSilentCamera(t);
  const dir = await tmpDir(t);
  const pids: number[] = [];
  const capture: CaptureFunction = (req) => captureFrame({ ...req, onSpawn: (pid) => pids.push(pid) });
  const spooled: Capture[] = [];
  const sink = async (c: Capture): Promise<void> => {
    const n = spooled.length;
    await rename(c.files.original, join(dir, `${c.camera}-${n}-o.jpg`));
    await rename(c.files.compressed, join(dir, `${c.camera}-${n}-c.jpg`));
    spooled.push({ ...c, files: { original: join(dir, `${c.camera}-${n}-o.jpg`), compressed: join(dir, `${c.camera}-${n}-c.jpg`) } });
  };
  const base = { transport: 'tcp' as const, intervalMs: INTERVAL_MS };
  const cams: CameraConfig[] = [
    { ...base, id: 'good', name: 'good', url: rtsp.url(), captureTimeoutMs: 10_000 },
    // -timeout longer than the hard timeout: the worker's SIGKILL is what ends each capture.
    { ...base, id: 'hung', name: 'hung', url: silent.url(), captureTimeoutMs: 2_500 },
  ];
  const workers = cams.map(
    (camera) =>
      new CameraWorker({ camera, clock: systemClock, log: silentLogger(), workDir: join(dir, 'work', camera.id), sink, capture, rtspTimeoutMs: 60_000 }),
  );
  const ac = new AbortController();
  const running = workers.map((w) => w.start(ac.signal));
  await new Promise((r) => setTimeout(r, RUN_MS));
  const [good, hung] = workers.map((w) => w.status());

  t.comment(`good: ${JSON.stringify(good)}`);
  t.comment(`hung: ${JSON.stringify(hung)}`);
  // Not a count of captures per second (a loaded machine slows ffmpeg and skips ticks): every
  // tick of the healthy camera either captured or was skipped behind its own running capture.
  t.ok(good!.capturesOk >= 2, `the healthy camera captured ${good!.capturesOk} times in ${RUN_MS} ms`);
  t.ok(good!.capturesOk + good!.skippedTicks >= good!.ticks - 1, 'every healthy tick captured or waited for its own capture');
  t.same(good!.failures, {}, 'and never failed');
  t.ok(hung!.failures.CAPTURE_TIMEOUT! >= 2, `the hung camera timed out ${hung!.failures.CAPTURE_TIMEOUT} times`);
  t.ok(hung!.skippedTicks >= 2, `its ticks during a running capture were skipped (${hung!.skippedTicks})`);
  t.equal(hung!.capturesOk, 0);
  t.ok(silent.accepted >= 2, 'each cycle really connected');

  // Fixed rate on the real clock: captures start on multiples of the interval.
  const goodAt = spooled.filter((c) => c.camera === 'good').map((c) => c.capturedAt);
  for (let i = 1; i < goodAt.length; i++) {
    const gap = goodAt[i]! - goodAt[0]!;
    const off = gap - Math.round(gap / INTERVAL_MS) * INTERVAL_MS;
    t.ok(Math.abs(off) < 150, `capture ${i} started ${gap} ms after the first (on the ${INTERVAL_MS} ms grid ±150)`);
  }
  for (const c of spooled) {
    t.equal(jpegProblem(await readFile(c.files.original)), null, `${c.camera} original is a complete JPEG`);
  }

  // Stop while the hung camera's ffmpeg is (very likely) running: prompt, and nothing left.
  const stopped = performance.now();
  ac.abort();
  await Promise.all(running);
  const ms = performance.now() - stopped;
  t.ok(ms < 1_500, `stopped in ${Math.round(ms)} ms`);
  t.ok(pids.length >= 6, `${pids.length} ffmpeg runs`);
  t.same(
    pids.filter((p) => isAlive(p)),
    [],
    'no ffmpeg left running',
  );
});
