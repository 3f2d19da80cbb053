// Temporary directories for tests, removed when the test ends.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Anything with tap's `teardown`; keeps helpers independent of tap's types. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A fresh directory under the OS temp dir, removed (recursively) at teardown. */
export async function tmpDir(t: Teardown, prefix = 'vigil-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A tmpfs of `bytes` mounted on a fresh directory (for disk-full tests), unmounted at teardown.
 * Needs root and a kernel that lets us mount; returns `{ skip }` with the reason otherwise.
 */
export async function tinyTmpfs(t: Teardown, bytes: number): Promise<{ dir: string } | { skip: string }> {
  const dir = await tmpDir(t, 'vigil-tmpfs-');
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  } catch (err) {
    const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    return { skip: `cannot mount a tmpfs here (${msg})` };
  }
  // Registered after tmpDir's removal, so it runs first (tap runs teardowns in reverse order).
  t.teardown(() => run('umount', ['-l', dir]).catch(() => undefined));
  return { dir };
}
