// The health loop's cost with 8 cameras: CPU and wall time of one HealthMonitor check (the loop
// runs one a minute, so per check = per minute), the heap it leaves behind, and the heartbeat
// it feeds. The real agent in-process: its supervision tree, 8 camera workers (their cameras
// refuse connections, so captures fail fast), 16 uploaders and a queue with a backlog on disk.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, openParts } from '../agent/dist/agent.js';
import { parseConfig } from '../agent/dist/config.js';
import { systemClock } from '../agent/dist/lib/clock.js';
import { silentLogger } from '../agent/dist/lib/logger.js';
import { readClockState } from '../agent/dist/health/system-facts.js';
import { LOOPBACK_AGENT, report } from './lib.ts';

const CAMERAS = 8;
const CHECKS = 500;
const BACKLOG_PER_CAMERA = 200;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-health-'));
const serial = join(dir, 'serial');
writeFileSync(serial, '10000000b3nc4000\n');
const config = parseConfig({
  cloudUrl: 'http://127.0.0.1:9',
  dataDir: dir,
  serialSources: [serial],
  cameras: Array.from({ length: CAMERAS }, (_, i) => ({ id: `cam${i + 1}`, url: `rtsp://127.0.0.1:9/cam${i + 1}` })),
  // The loop itself is driven by the bench; no NTP tool is asked (its cost is measured apart).
  health: { intervalMs: 3_600_000 },
  heartbeatIntervalMs: 3_600_000,
  ...LOOPBACK_AGENT,
  system: { clockStatusCommand: [] },
});
const parts = await openParts(config);
const at0 = Date.now() - 3_600_000;
for (let c = 1; c <= CAMERAS; c++) {
  for (let i = 0; i < BACKLOG_PER_CAMERA; i++) {
    const at = at0 + i * 30_000;
    parts.queue.enqueue(
      (['original', 'compressed'] as const).map((variant) => ({
        camera: `cam${c}`, imagePath: join(dir, `c${c}-${at}-${variant}.jpg`), capturedAt: at, variant, dhash: 'a'.repeat(1024), sha256: 'f'.repeat(64), bytes: 1000,
      })),
      at,
    );
  }
}
const agent = new Agent(config, parts, systemClock, silentLogger());
const stop = new AbortController();
const running = agent.run(stop.signal);
while (!agent.health || agent.tree?.nodes().size === 0) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 500));

const health = agent.health;
for (let i = 0; i < 20; i++) await health.check(); // warm-up
gc();
const heap0 = process.memoryUsage().heapUsed;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < CHECKS; i++) await health.check();
const wallMs = (performance.now() - t0) / CHECKS;
const cpu = process.cpuUsage(cpu0);
gc();
const heapGrowth = (process.memoryUsage().heapUsed - heap0) / CHECKS;

const hb0 = process.cpuUsage();
let bytes = 0;
for (let i = 0; i < CHECKS; i++) bytes = JSON.stringify(agent.heartbeat!.build()).length;
const hbCpu = process.cpuUsage(hb0);

const clock0 = process.cpuUsage();
const c0 = performance.now();
const SPAWNS = 20;
for (let i = 0; i < SPAWNS; i++) await readClockState(['sh', '-c', 'echo "Leap status : Normal"'], Date.now(), null);
const clockWall = (performance.now() - c0) / SPAWNS;
const clockCpu = process.cpuUsage(clock0);

stop.abort();
await running;
agent.close();
rmSync(dir, { recursive: true, force: true });

report('health_check_cpu_8cams', (cpu.user + cpu.system) / 1000 / CHECKS, 'ms/min');
report('health_check_wall_8cams', wallMs, 'ms');
report('health_check_heap_retained', Math.max(0, heapGrowth), 'bytes/check');
report('heartbeat_build_cpu_8cams', (hbCpu.user + hbCpu.system) / 1000 / CHECKS, 'ms/min');
report('heartbeat_size_8cams', bytes, 'bytes');
report('health_ntp_status_wall', clockWall, 'ms/min');
report('health_ntp_status_cpu', (clockCpu.user + clockCpu.system) / 1000 / SPAWNS, 'ms/min');
