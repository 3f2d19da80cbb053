// The single executable (make agent-bin, docs/agent-bin.md): its size per arch, the time from
// exec to exit of `status` (median of 5, after one warm-up run that creates the database), and
// its peak RSS while `run` idles for 3 s after claiming from the real cloud with no camera
// (and, of that, the anonymous part at the end).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOOPBACK_AGENT, percentile, report, ROOT, spawnUntil, stop, startBenchCloud } from './lib.ts';

const OUT = join(ROOT, 'build/agent-bin');
const X64 = join(OUT, 'linux-x64/vigil-agent');
const ARM64 = join(OUT, 'linux-arm64/vigil-agent');
const RUNS = 5;
const IDLE_MS = 3000;
for (const f of [X64, ARM64]) if (!existsSync(f)) throw new Error(`${f} is missing: run make agent-bin`);

const mb = (bytes: number) => bytes / 1024 / 1024;
report('agent_bin_x64_size', mb(statSync(X64).size), 'MB');
report('agent_bin_arm64_size', mb(statSync(ARM64).size), 'MB');

const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-bin-'));
const home = join(dir, 'home');
mkdirSync(home);
writeFileSync(join(dir, 'serial'), '10000000bench001\n');
const env = { PATH: '/usr/bin:/bin', HOME: home, VIGIL_LOG_LEVEL: 'info' };
const writeConfig = (name: string, config: Record<string, unknown>) => {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ dataDir: join(dir, name), serialSources: [join(dir, 'serial')], ...LOOPBACK_AGENT, ...config }));
  return file;
};

const statusConfig = writeConfig('status', { cloudUrl: 'http://127.0.0.1:9' });
execFileSync(X64, ['status', '--config', statusConfig], { env, stdio: 'ignore' });
const times: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = process.hrtime.bigint();
  execFileSync(X64, ['status', '--config', statusConfig], { env, stdio: 'ignore' });
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
report('agent_bin_x64_startup_ms', percentile(times, 50), 'ms');

const cloud = await startBenchCloud(dir);
const { url, claimCode: code } = cloud;
const runConfig = writeConfig('run', { cloudUrl: url, claimCode: code });
const { child } = await spawnUntil(X64, ['run', '--config', runConfig], /"msg":"device claimed"/, env);
await new Promise((r) => setTimeout(r, IDLE_MS));
// VmHWM: the peak resident set since start (start-up, claim and 3 s idle). Most of it is the
// executable's own pages (file-backed, shared, reclaimable); RssAnon is the agent's heap.
const procStatus = readFileSync(`/proc/${child.pid}/status`, 'utf8');
const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(procStatus)![1]);
const peakKb = kb('VmHWM');
const anonKb = kb('RssAnon');
await stop(child);
await cloud.close();
rmSync(dir, { recursive: true, force: true });
report('agent_bin_x64_rss_mb', peakKb / 1024, 'MB');
report('agent_bin_x64_rss_anon_mb', anonKb / 1024, 'MB');
