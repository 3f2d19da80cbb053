// Shared by the benchmarks. Benchmarks run with Node's type stripping against the compiled
// packages (make bench builds first) and print one line per figure:
//   bench <name> <value> <unit>
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

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
