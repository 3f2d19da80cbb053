// The SD card's first partition (AUTOBOOT, FAT16: autoboot.txt and the card settings vigil.txt,
// docs/firmware.md) from the host's side, never mounted: files written and read with mtools
// on the image at p1's offset, as `make flash` writes vigil.txt (scripts/card-settings.sh).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { partitions } from './disk.ts';

const run = promisify(execFile);

export const CARD_PARTITION = 1;

/** `image@@offset`: p1 as mtools takes it. */
async function fatSpec(image: string): Promise<string> {
  const p1 = (await partitions(image)).get(CARD_PARTITION);
  if (!p1) throw new Error(`${image} has no partition ${CARD_PARTITION}`);
  return `${image}@@${p1.start}`;
}

// mtools compares a filesystem's geometry with a BIOS disk's: not one here
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

/** Writes (or replaces) `name` in p1 of the disk image with `content`, byte for byte. */
export async function writeCardFile(image: string, name: string, content: string | Buffer): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-card-file-'));
  try {
    const file = join(dir, 'content');
    await writeFile(file, content);
    await run('mcopy', ['-o', '-i', await fatSpec(image), file, `::${name}`], { env: MTOOLS_ENV });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The bytes of `name` in p1 of the disk image as text, or null when p1 has no such file. */
export async function readCardFile(image: string, name: string): Promise<string | null> {
  const spec = await fatSpec(image);
  const { stdout } = await run('mdir', ['-b', '-i', spec, '::'], { env: MTOOLS_ENV });
  const names = stdout.split('\n').map((l) => l.trim().replace(/^::\/?/, '').toLowerCase());
  if (!names.includes(name.toLowerCase())) return null;
  const r = await run('mtype', ['-i', spec, `::${name}`], { env: MTOOLS_ENV, encoding: 'buffer' });
  return r.stdout.toString('utf8');
}
