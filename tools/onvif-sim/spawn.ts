// Runs the simulator as a child process and waits for its "ready <xaddr>" line — for a camera
// that must live in another network namespace (`prefix: ['ip', 'netns', 'exec', ns]`), or one
// a test wants to SIGKILL. The caller stops it (stop(), or its own teardown).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { toArgs, type OnvifSimOptions } from './options.ts';

export const ONVIF_SIM_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 3_000;

export interface OnvifSimProcess {
  xaddr: string;
  child: ChildProcess;
  /** Everything it wrote to stderr so far (its log with `verbose`). */
  stderr(): string;
  /** SIGTERM (the simulator sends Bye and exits 0), SIGKILL after a grace period. */
  stop(): Promise<number | null>;
}

export interface SpawnOnvifSimOptions {
  /** Command to run node under, e.g. ['ip', 'netns', 'exec', 'vigil-…-cam']. */
  prefix?: string[];
  /** Node binary (default: the running one). */
  node?: string;
  readyTimeoutMs?: number;
}

export async function spawnOnvifSim(options: OnvifSimOptions, how: SpawnOnvifSimOptions = {}): Promise<OnvifSimProcess> {
  const argv = [how.node ?? process.execPath, '--experimental-strip-types', '--no-warnings', ONVIF_SIM_MAIN, ...toArgs(options)];
  const cmd = [...(how.prefix ?? []), ...argv];
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-64_000)));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const xaddr = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`onvif-sim: not ready within ${how.readyTimeoutMs ?? READY_TIMEOUT_MS} ms; stderr: ${stderr}`)), how.readyTimeoutMs ?? READY_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      if (line.startsWith('ready ')) resolve(line.slice(6).trim());
      else reject(new Error(`onvif-sim: unexpected first line ${JSON.stringify(line)}; stderr: ${stderr}`));
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`onvif-sim exited (${code}) before it was ready; stderr: ${stderr}`));
    });
  }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    xaddr,
    child,
    stderr: () => stderr,
    async stop(): Promise<number | null> {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
