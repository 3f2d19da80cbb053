import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Reads a secret kept in the data dir, creating it (0600) when it does not exist yet. It is
 * written to a temp file and then hard-linked into place: a crash never leaves a half-written
 * secret, and when two processes (server and CLI) create it at once, link() lets only one win
 * and the other reads the winner's value. `created` says whether this call generated it.
 */
export function loadOrCreateSecret(dataDir: string, name: string, bytes = 32): { value: string; path: string; created: boolean } {
  const path = join(dataDir, name);
  try {
    const value = readFileSync(path, 'utf8').trim();
    if (value) return { value, path, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const value = randomBytes(bytes).toString('base64url');
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${value}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { value: readFileSync(path, 'utf8').trim(), path, created: false };
  } finally {
    unlinkSync(tmp);
  }
  return { value, path, created: true };
}
