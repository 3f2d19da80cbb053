// The analysis pipeline on the real cloud (SQLite, object folder, loopback HTTP), fed the way
// devices feed it (presign → PUT → complete), with the in-process vision model test double:
//   - frames/s from upload to event, every frame a change (each its own batch), fast model;
//   - batches/s with a slow model (200 ms per answer) at concurrency 1 and 4, from the first
//     upload to the last event (the bound is 5/s and 20/s);
//   - the dedupe skip rate on a still scene with sensor noise.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCloud } from '../cloud/dist/main.js';
import { FixedAnalyser } from '../cloud/test/doubles/fixed-analyser.ts';
import { encode, paste, patternScene, person, photoScene, withNoise } from '../cloud/test/scenes.ts';
import { benchFrame, claimBenchDevice, uploadBenchFrame } from './device-client.ts';
import { BENCH_ADMIN_TOKEN, report } from './lib.ts';

const CAMERAS = 4;
const FRAMES = 160;
const SLOW_BATCHES = 32;
const STILL_FRAMES = 100;

const dirs: string[] = [];
process.on('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function cloudWith(analyser: FixedAnalyser, concurrency = 4) {
  const dataDir = mkdtempSync(join(tmpdir(), 'vigil-bench-pipeline-'));
  dirs.push(dataDir);
  const cloud = await startCloud(
    { port: 0, logLevel: 'silent', dataDir, adminToken: BENCH_ADMIN_TOKEN, batchWindowS: 0, visionConcurrency: concurrency, deviceRateLimit: 100_000 },
    { analyser, detector: null },
  );
  const token = await claimBenchDevice(cloud.url, BENCH_ADMIN_TOKEN, 'bench-pipeline');
  const upload = (f: Awaited<ReturnType<typeof benchFrame>>, camera: string, capturedAt: number) => uploadBenchFrame(cloud.url, token, f, camera, capturedAt);
  return { cloud, upload };
}

async function until(check: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('the pipeline did not finish in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Distinct frames: a person at 40 places on the pattern, with noise.
const scene = await patternScene();
const walker = await person(160);
const changed: Buffer[] = [];
for (let i = 0; i < 40; i++) changed.push(await encode(withNoise(await paste(scene, walker, 20 + (i % 8) * 75, 20 + Math.floor(i / 8) * 35), 4, i + 1)));
const described = await Promise.all(changed.map((b) => benchFrame(b)));

{
  const analyser = new FixedAnalyser();
  const { cloud, upload } = await cloudWith(analyser);
  const t0 = performance.now();
  const base = Date.now();
  // One uploader per camera, as devices with one camera each would.
  await Promise.all(
    Array.from({ length: CAMERAS }, async (_, cam) => {
      for (let i = 0; i < FRAMES / CAMERAS; i++) {
        await upload(described[(i * 7 + cam) % described.length]!, `cam-${cam}`, base + i * 30_000);
      }
    }),
  );
  const uploaded = performance.now();
  await until(async () => (await cloud.store.analysis.counters()).events === FRAMES);
  const done = performance.now();
  report('pipeline_upload_to_event', FRAMES / ((done - t0) / 1000), 'frames/s');
  report('pipeline_uploads', FRAMES / ((uploaded - t0) / 1000), 'frames/s');
  report('pipeline_drain_after_upload', done - uploaded, 'ms');
  await cloud.close();
}

for (const concurrency of [1, 4]) {
  const analyser = new FixedAnalyser();
  analyser.delayMs = 200;
  const { cloud, upload } = await cloudWith(analyser, concurrency);
  const base = Date.now();
  const t0 = performance.now();
  for (let i = 0; i < SLOW_BATCHES; i++) await upload(described[i % described.length]!, `cam-${i % CAMERAS}`, base + i * 30_000);
  await until(async () => (await cloud.store.analysis.counters()).events === SLOW_BATCHES);
  const s = (performance.now() - t0) / 1000;
  report(`pipeline_slow_model_c${concurrency}`, SLOW_BATCHES / s, 'batches/s');
  report(`pipeline_slow_model_c${concurrency}_max_in_flight`, analyser.maxInFlight, 'calls');
  await cloud.close();
}

{
  const analyser = new FixedAnalyser();
  const { cloud, upload } = await cloudWith(analyser);
  const still = await photoScene();
  const base = Date.now();
  for (let i = 0; i < STILL_FRAMES; i++) await upload(await benchFrame(await encode(withNoise(still, 6, i + 1))), 'cam-still', base + i * 30_000);
  await until(async () => (await cloud.store.analysis.counters()).jobs.frame.done === STILL_FRAMES);
  const c = await cloud.store.analysis.counters();
  report('dedupe_static_skip_rate', (100 * c.frames.skipped) / c.frames.seen, '%');
  report('dedupe_static_model_calls', analyser.calls, 'calls');
  await cloud.close();
}
