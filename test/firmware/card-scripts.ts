// Runs the firmware's card and network scripts on the host (test/firmware/vigil-card.test.ts,
// network-config.test.ts): under dash (the host's sh) and under BusyBox's sh with BusyBox's own
// sed, awk, od... first on PATH, as on the device.
import { execFile } from 'node:child_process';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tmpDir, type Teardown } from '../helpers/tmp.js';

const exec = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const OVERLAY = join(ROOT, 'board/common/rootfs-overlay');
export const LIB = join(OVERLAY, 'usr/lib/vigil/lib.sh');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<Result> {
  try {
    const p = exec(cmd, args, { cwd: ROOT, env: { ...process.env, ...env } });
    if (input !== undefined) p.child.stdin?.end(input);
    const r = await p;
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/** The commands the scripts use that BusyBox has as applets (the device has no others). */
const APPLETS = [
  'awk', 'sed', 'od', 'tr', 'wc', 'cmp', 'mktemp', 'cat', 'mv', 'cp', 'rm', 'chmod', 'mkdir', 'head',
  'tail', 'sync', 'dirname', 'readlink', 'rmdir', 'hostname', 'mount', 'umount', 'printf', 'sleep',
];

export interface Shell {
  name: string;
  /** Runs a script file with this shell. */
  run(script: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Result>;
}

/** dash, and BusyBox sh (make test's set-up installs BusyBox: scripts/deps.sh, firmware-check.sh deps). */
export async function shells(t: Teardown): Promise<Shell[]> {
  const list: Shell[] = [{ name: 'sh', run: (s, a, env = {}) => run('sh', [s, ...a], env) }];
  const where = (await run('sh', ['-c', 'command -v busybox'])).stdout.trim();
  const probe = where ? await run(where, ['--list']) : undefined;
  if (probe?.code !== 0) throw new Error('BusyBox is not installed: make test installs it (scripts/deps.sh runs firmware-check.sh deps)');
  const have = new Set(probe.stdout.split('\n'));
  const bin = join(await tmpDir(t, 'vigil-busybox-'), 'bin');
  await mkdir(bin);
  for (const a of APPLETS) if (have.has(a)) await symlink(where, join(bin, a));
  list.push({
    name: 'busybox sh',
    run: (s, a, env = {}) => run('busybox', ['sh', s, ...a], { ...env, PATH: `${bin}:${env.PATH ?? process.env.PATH}` }),
  });
  return list;
}
