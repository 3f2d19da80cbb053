// The real cloud as a child process (the built CLI's `serve`), for drills with several replicas
// that kill one mid-load. Configured by environment, as an operator would; logs are kept.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Teardown } from './tmp.js';

const CLI = fileURLToPath(new URL('../../cloud/dist/cli.js', import.meta.url));

export interface CloudProcess {
  child: ChildProcess;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Parsed pino lines (and raw stderr lines as { msg }). */
  logs: { level: number; msg: string; [k: string]: unknown }[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL, as a crash or an OOM kill would; resolves once it is gone. */
  kill(): Promise<void>;
}

const tail = (logs: CloudProcess['logs']): string =>
  logs
    .slice(-5)
    .map((l) => l.msg)
    .join(' | ');

/** Starts `vigil-cloud serve` on 127.0.0.1:`port` with `env`; resolves once it answers. */
export async function startCloudProcess(t: Teardown, port: number, env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<CloudProcess> {
  const child = spawn(process.execPath, [CLI, 'serve'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VIGIL_CLOUD_HOST: '127.0.0.1', VIGIL_CLOUD_PORT: String(port), VIGIL_LOG_LEVEL: 'info', ...env },
  });
  const logs: CloudProcess['logs'] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as CloudProcess['logs'][number]);
    } catch {
      logs.push({ level: 30, msg: line });
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => logs.push({ level: 50, msg: line }));
  const exited = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  t.teardown(async () => {
    process.off('exit', killOnExit);
    await kill();
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  // Ready when it answers its health check (at any log level).
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`cloud on port ${port} exited; logs: ${tail(logs)}`);
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error(`cloud on port ${port} did not start; logs: ${tail(logs)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url, logs, exited, kill };
}
