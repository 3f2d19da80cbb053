// The capture pass: one ffmpeg run that writes the original (q2), the compressed variant
// (<= 1024 px, q18) and the dHash thumbnail, then verifies all three and hashes. Input is a
// 1920x1080 JPEG on disk, so the figure is the pass itself, not the network or the camera.
// A second, smaller figure times the same capture from the RTSP test camera (1080p), which
// adds session setup, stream analysis and the wait for a keyframe.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureFrame } from '../agent/dist/capture/ffmpeg-capture.js';
import { percentile, report, startRtsp, stop } from './lib.ts';

const RUNS = Number(process.env.BENCH_CAPTURE_RUNS ?? 20);
const RTSP_RUNS = Number(process.env.BENCH_CAPTURE_RTSP_RUNS ?? 5);

async function timeRuns(n: number, url: string, dir: string): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const workDir = join(dir, `run-${i}`);
    const t0 = performance.now();
    await captureFrame({ url, workDir, timeoutMs: 60_000 });
    ms.push(performance.now() - t0);
    rmSync(workDir, { recursive: true, force: true });
  }
  return ms;
}

const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-capture-'));
try {
  const still = join(dir, 'still-1080p.jpg');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=1', '-frames:v', '1', '-q:v', '2', '-update', '1', still]);
  await timeRuns(1, still, dir); // warm the page cache and the dynamic loader
  const pass = await timeRuns(RUNS, still, dir);
  report('capture_two_variant_1080p_ms', percentile(pass, 50), 'ms');
  report('capture_two_variant_1080p_p95_ms', percentile(pass, 95), 'ms');

  if (RTSP_RUNS > 0) {
    const cam = await startRtsp(['/cam'], '1920x1080');
    try {
      const rtsp = await timeRuns(RTSP_RUNS, `${cam.base}/cam`, dir);
      report('capture_rtsp_1080p_ms', percentile(rtsp, 50), 'ms');
    } finally {
      await stop(cam.child);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
