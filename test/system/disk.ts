// The SD card image from the host's side, never mounted: its partition table (sfdisk), a
// per-test copy with files written into the data partition (debugfs), and after a boot or a
// power cut the data partition's state (e2fsck) and contents (debugfs rdump).
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tmpDir, type Teardown } from '../helpers/tmp.ts';

const run = promisify(execFile);

export const DATA_PARTITION = 7;
export const ROOTFS_A_PARTITION = 5;

export interface Partition {
  start: number;
  size: number;
}

/** Byte offsets and sizes of the image's partitions, from its MBR (sfdisk). */
export async function partitions(image: string): Promise<Map<number, Partition>> {
  const { stdout } = await run('sfdisk', ['-J', image]);
  const table = JSON.parse(stdout) as { partitiontable: { sectorsize?: number; partitions: { node: string; start: number; size: number }[] } };
  const sector = table.partitiontable.sectorsize ?? 512;
  const out = new Map<number, Partition>();
  for (const p of table.partitiontable.partitions) {
    const n = Number(/(\d+)$/.exec(p.node)?.[1]);
    out.set(n, { start: p.start * sector, size: p.size * sector });
  }
  return out;
}

export interface Disk {
  path: string;
  dir: string;
  parts: Map<number, Partition>;
  /** `path?offset=N` of the data partition, as e2fsprogs' unix I/O manager takes it. */
  dataFs: string;
}

/**
 * A private copy of the SD card (sparse: ~200 MB written of 1.6 GB) with `files` written into
 * the data partition's filesystem (paths relative to /data), as a technician's provisioning
 * or a first boot would leave them. `sizeBytes` makes the card bigger than the image (sparse).
 */
export async function makeDisk(
  t: Teardown,
  image: string,
  files: Record<string, string>,
  opts: { sizeBytes?: number } = {},
): Promise<Disk> {
  const dir = await tmpDir(t, 'vigil-qemu-');
  const path = join(dir, 'sdcard.img');
  await run('cp', ['--sparse=always', image, path]);
  // A bigger card: the first boot grows p7 (and the extended partition) to its end
  // (S03vigil-data, vigil-grow-data), as on a Pi with a card larger than the image
  if (opts.sizeBytes !== undefined) await run('truncate', ['-s', String(opts.sizeBytes), path]);
  const parts = await partitions(path);
  const data = parts.get(DATA_PARTITION);
  if (!data) throw new Error(`${image} has no partition ${DATA_PARTITION}`);
  const dataFs = `${path}?offset=${data.start}`;
  const stage = join(dir, 'stage');
  mkdirSync(stage);
  const cmds: string[] = [];
  const made = new Set<string>();
  Object.entries(files).forEach(([rel, content], i) => {
    const segs = rel.split('/');
    for (let j = 1; j < segs.length; j++) {
      const d = segs.slice(0, j).join('/');
      if (!made.has(d)) cmds.push(`mkdir ${d}`);
      made.add(d);
    }
    const local = join(stage, String(i));
    writeFileSync(local, content);
    cmds.push(`write ${local} ${rel}`);
  });
  const cmdFile = join(dir, 'debugfs.cmds');
  writeFileSync(cmdFile, cmds.join('\n') + '\n');
  await run('debugfs', ['-w', '-f', cmdFile, dataFs]);
  for (const rel of Object.keys(files)) {
    const { stdout } = await run('debugfs', ['-R', `stat ${rel}`, dataFs]);
    if (!/Inode:/.test(stdout)) throw new Error(`debugfs did not write ${rel}`);
  }
  return { path, dir, parts, dataFs };
}

/** `e2fsck -fn` on the data partition in place: rc 0 = clean; a cut leaves rc 4 with an unreplayed journal. */
export async function fsckData(disk: Disk): Promise<{ rc: number; out: string; journalPending: boolean }> {
  return fsck(disk.dataFs, ['-fn']);
}

async function fsck(target: string, flags: string[]): Promise<{ rc: number; out: string; journalPending: boolean }> {
  let rc = 0;
  let out = '';
  try {
    const r = await run('e2fsck', [...flags, target]);
    out = r.stdout + r.stderr;
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    rc = typeof e.code === 'number' ? e.code : -1;
    out = (e.stdout ?? '') + (e.stderr ?? '');
  }
  return { rc, out, journalPending: /journal recovery|needs_recovery|recovering journal/i.test(out) };
}

/**
 * What the next boot will find on /data: a copy of the data partition with its journal
 * replayed (`e2fsck -fy`, as the guest's S03vigil-data does with -p), then `e2fsck -fn` on
 * the copy (must be clean), then the agent's directory dumped out of it with debugfs.
 * Returns the dumped directory (holds agent.db, its WAL, spool/) and both fsck results.
 */
export async function dataAfterRecovery(
  disk: Disk,
  dest: string,
): Promise<{ vigilDir: string; repair: { rc: number; out: string }; check: { rc: number; out: string } }> {
  const data = disk.parts.get(DATA_PARTITION)!;
  const copy = join(dest, 'data.ext4');
  mkdirSync(dest, { recursive: true });
  await copyPartition(disk.path, data, copy);
  const repair = await fsck(copy, ['-fy']);
  const check = await fsck(copy, ['-fn']);
  const out = join(dest, 'dump');
  mkdirSync(out, { recursive: true });
  await run('debugfs', ['-R', `rdump vigil ${out}`, copy]);
  rmSync(copy);
  return { vigilDir: join(out, 'vigil'), repair, check };
}

/** `dd` of one partition into a file, sparse where the source is zero-filled. */
async function copyPartition(image: string, part: Partition, dest: string): Promise<void> {
  await run('dd', [`if=${image}`, `of=${dest}`, 'bs=4M', 'iflag=skip_bytes,count_bytes', `skip=${part.start}`, `count=${part.size}`, 'conv=sparse', 'status=none']);
}

/** sha256 of one partition's bytes (the read-only root must not change, power cuts or not). */
export async function partitionSha256(disk: Disk, n: number): Promise<string> {
  const p = disk.parts.get(n)!;
  const { stdout } = await run(
    'sh',
    ['-c', `dd if="$1" bs=1M iflag=skip_bytes,count_bytes skip=$2 count=$3 status=none | sha256sum`, 'sh', disk.path, String(p.start), String(p.size)],
    { maxBuffer: 1024 * 1024 },
  );
  return stdout.split(' ')[0]!;
}
