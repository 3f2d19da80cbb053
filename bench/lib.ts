// Shared by the benchmarks. Benchmarks run with Node's type stripping against the compiled
// packages (make bench builds first) and print one line per figure:
//   bench <name> <value> <unit>
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { loadConfig } from '../cloud/dist/config.js';
import { startCloud } from '../cloud/dist/main.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export function report(name: string, value: number, unit: string): void {
  const v = Number.isInteger(value) ? String(value) : value.toFixed(value >= 100 ? 0 : 2);
  console.log(`bench ${name} ${v} ${unit}`);
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Spawns a process and resolves once a stdout line matches; returns it and the match. */
export async function spawnUntil(
  cmd: string,
  args: string[],
  ready: RegExp,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 20_000,
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  process.on('exit', () => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  for await (const line of lines) {
    const m = ready.exec(line);
    if (m) {
      clearTimeout(timer);
      lines.removeAllListeners('line');
      child.stdout!.resume();
      return { child, match: m };
    }
  }
  throw new Error(`${cmd} exited before it was ready`);
}

/** The project's RTSP test camera (tools/rtsp-camera.py) with the given mounts. */
export async function startRtsp(mounts: string[], size = '1280x720'): Promise<{ child: ChildProcess; base: string }> {
  const args = [`${ROOT}tools/rtsp-camera.py`, '--port', '0', '--size', size, ...mounts.flatMap((m) => ['--mount', m])];
  const { child, match } = await spawnUntil('/usr/bin/python3', args, /^ready (rtsp:\/\/\S+)$/);
  return { child, base: match[1]! };
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await once(child, 'exit');
  clearTimeout(t);
}

/**
 * What every bench agent's config holds: nothing beyond loopback (no multicast discovery
 * probes, the status page on loopback at a free port, so no mDNS) and no status light.
 */
export const LOOPBACK_AGENT = { discovery: { enabled: false }, local: { host: '127.0.0.1', port: 0 }, statusLight: { led: '' } };

export const BENCH_ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';

/** The real cloud on a loopback port with its data in `dir`/cloud, and a claim code for a bench device. */
export async function startBenchCloud(dir: string): Promise<{ url: string; claimCode: string; close(): Promise<void> }> {
  const cloud = await startCloud(loadConfig({ env: {}, overrides: { port: 0, dataDir: join(dir, 'cloud'), adminToken: BENCH_ADMIN_TOKEN, logLevel: 'silent' } }));
  const url = `http://127.0.0.1:${cloud.port}`;
  const res = await fetch(`${url}/admin/v1/claim-codes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ site: 'bench' }),
  });
  const { code } = (await res.json()) as { code: string };
  return { url, claimCode: code, close: () => cloud.close() };
}
