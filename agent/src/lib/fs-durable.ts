import { open, rename, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';

/** fsync a file or a directory by path. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Makes `from` durable and moves it to `to` atomically: fsync the data, rename, fsync the
 * target directory so the rename itself survives a power cut.
 */
export async function durableMove(from: string, to: string): Promise<void> {
  await fsyncPath(from);
  await rename(from, to);
  await fsyncPath(dirname(to));
}

export async function hashFile(path: string): Promise<{ bytes: number; sha256: string; data: Buffer }> {
  const data = await readFile(path);
  return { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), data };
}
