// Agent memory with 4 cameras: the real agent process capturing 1280x720 streams from the
// RTSP test camera every 2 s and uploading to the real cloud; RSS sampled from /proc after a
// warm-up (ffmpeg children are separate processes and not counted).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile, report, ROOT, startRtsp, stop, startBenchCloud, BENCH_ADMIN_TOKEN, LOOPBACK_AGENT } from './lib.ts';

const WARMUP_MS = 15_000;
const SAMPLE_MS = 30_000;
const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-rss-'));
const cloud = await startBenchCloud(dir);
const { url, claimCode: code } = cloud;
const rtsp = await startRtsp(['/c1', '/c2:smpte', '/c3:snow', '/c4:pinwheel'], '1280x720');
const dataDir = join(dir, 'agent');
writeFileSync(join(dir, 'serial'), '10000000bench000\n');
writeFileSync(join(dir, 'agent.json'), JSON.stringify({
  cloudUrl: url, dataDir, claimCode: code, captureIntervalMs: 2000, serialSources: [join(dir, 'serial')],
  ...LOOPBACK_AGENT,
  cameras: ['c1', 'c2', 'c3', 'c4'].map((id) => ({ id, url: `${rtsp.base}/${id}` })),
}));
const agent = spawn(process.execPath, [join(ROOT, 'agent/dist/cli.js'), 'run', '--config', join(dir, 'agent.json')], {
  stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, VIGIL_LOG_LEVEL: 'warn' },
});
process.on('exit', () => agent.kill('SIGKILL'));
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'))![1]) / 1024;
await new Promise((r) => setTimeout(r, WARMUP_MS));
const samples: number[] = [];
const end = Date.now() + SAMPLE_MS;
while (Date.now() < end) {
  samples.push(rssMb());
  await new Promise((r) => setTimeout(r, 1000));
}
const frames = (await (await fetch(`${url}/admin/v1/cameras`, { headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` } })).json()) as { frames: number }[];
await stop(agent);
await stop(rtsp.child);
await cloud.close();
rmSync(dir, { recursive: true, force: true });
report('agent_rss_4_cameras_median', percentile(samples, 50), 'MB');
report('agent_rss_4_cameras_max', Math.max(...samples), 'MB');
report('agent_rss_growth_over_30s', samples.at(-1)! - samples[0]!, 'MB');
report('agent_rss_frames_uploaded', frames.reduce((a, c) => a + c.frames, 0), 'frames');
