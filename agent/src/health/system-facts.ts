// What the device is and how it is doing, read from the files the firmware provides
// (docs/firmware.md): the release file, the kernel command line, the Pi firmware's tryboot
// flag, the NTP state and the data disk. Every path comes from the config, so tests and
// machines without the firmware read their own files; a missing file is "unknown", never an error.
import { execFile } from 'node:child_process';
import { readFile, statfs } from 'node:fs/promises';
import type { ClockState } from '@vigil/protocol';

export interface FirmwareInfo {
  version: string | null;
  slot: 'A' | 'B' | null;
  /** A trial (tryboot) boot of a new slot that has not been committed yet. */
  trial: boolean;
  /** The firmware's build time, epoch ms (the clock's floor at boot). */
  builtAt: number | null;
}

export interface SystemFiles {
  releaseFile: string;
  cmdlineFile: string;
  trybootFile: string;
  clockStatusCommand: string[];
}

/** How long the NTP status command may take. */
export const CLOCK_STATUS_TIMEOUT_MS = 5_000;

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** KEY=value lines (the release file is written by the firmware's post-build script). */
export function parseAssignments(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim().replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

export function kernelParam(cmdline: string, name: string): string | undefined {
  for (const word of cmdline.trim().split(/\s+/)) {
    if (word.startsWith(`${name}=`)) return word.slice(name.length + 1);
  }
  return undefined;
}

export async function readFirmwareInfo(f: SystemFiles): Promise<FirmwareInfo> {
  const release = parseAssignments((await readText(f.releaseFile)) ?? '');
  const cmdline = (await readText(f.cmdlineFile)) ?? '';
  const slot = kernelParam(cmdline, 'vigil.slot')?.toUpperCase();
  let trial = kernelParam(cmdline, 'vigil.tryboot') === '1';
  if (!trial) {
    // The Pi firmware's flag is one big-endian 32-bit cell: 1 in a trial boot.
    try {
      const cell = await readFile(f.trybootFile);
      trial = cell.length >= 4 && cell.readUInt32BE(0) === 1;
    } catch {
      trial = false;
    }
  }
  const epoch = Number(release.VIGIL_FIRMWARE_BUILD_EPOCH);
  return {
    version: release.VIGIL_FIRMWARE_VERSION || null,
    slot: slot === 'A' || slot === 'B' ? slot : null,
    trial,
    builtAt: Number.isFinite(epoch) && epoch > 0 ? epoch * 1000 : null,
  };
}

/** chronyc's "Leap status : Normal" means synchronised; "Not synchronised" means not yet. */
export function parseClockStatus(output: string): ClockState {
  const m = /^Leap status\s*:\s*(.+)$/m.exec(output);
  if (!m) return 'unknown';
  return /not synchroni[sz]ed/i.test(m[1]!) ? 'unsynced' : 'synced';
}

/**
 * The NTP state. A wall clock behind the firmware's build time is unsynced whatever NTP says
 * (the Pi has no battery clock); without an NTP tool the answer is "unknown".
 */
export async function readClockState(command: string[], now: number, builtAt: number | null): Promise<ClockState> {
  if (builtAt !== null && now < builtAt) return 'unsynced';
  const [file, ...args] = command;
  if (!file) return 'unknown';
  return new Promise((resolve) => {
    execFile(file, args, { timeout: CLOCK_STATUS_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout) => {
      resolve(err ? 'unknown' : parseClockStatus(stdout));
    });
  });
}

export interface DiskSpace {
  totalBytes: number;
  freeBytes: number;
}

/** Space on the filesystem holding `path`, as an unprivileged writer sees it. */
export async function readDiskSpace(path: string): Promise<DiskSpace | null> {
  try {
    const s = await statfs(path);
    return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
  } catch {
    return null;
  }
}
