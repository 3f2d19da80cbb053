import { mkdir, readdir, rm, unlink, stat } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { jpegProblem, VARIANTS, isVariant, type Variant } from '@vigil/protocol';
import type { Capture } from '../capture/types.js';
import type { Bus } from '../lib/bus.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { VigilError, errorCode } from '../lib/errors.js';
import { durableMove, hashFile } from '../lib/fs-durable.js';
import type { Counters } from '../store/counters.js';
import type { NewQueueItem, UploadQueue } from '../store/upload-queue.js';
import { dhashOfJpeg } from './dhash-file.js';

export interface OutboxOptions {
  spoolDir: string;
  budgetBytes: number;
  queue: UploadQueue;
  counters: Counters;
  bus: Bus;
  clock: Clock;
  log: Logger;
  /** For recomputing the dHash of a spool file found without its row. */
  ffmpegPath?: string;
}

const SPOOL_NAME_RE = /^(\d+)-(compressed|original)\.jpg$/;
export const WORK_DIR_NAME = '.work';

/**
 * The hand-off between capture and upload. A capture is durable once `accept` resolves:
 * each file is fsynced and renamed into the spool, then both rows are committed in one
 * transaction, and only then are the uploaders woken. Nothing is handed over in memory.
 */
export class Outbox {
  constructor(private readonly o: OutboxOptions) {}

  get workDir(): string {
    return join(this.o.spoolDir, WORK_DIR_NAME);
  }

  pathFor(camera: string, capturedAt: number, variant: Variant): string {
    return join(this.o.spoolDir, camera, `${capturedAt}-${variant}.jpg`);
  }

  readonly accept = async (capture: Capture): Promise<void> => {
    const { queue, counters, clock, log } = this.o;
    const moved: string[] = [];
    try {
      const items: NewQueueItem[] = [];
      for (const variant of VARIANTS) {
        const { bytes, sha256, data } = await hashFile(capture.files[variant]);
        const problem = jpegProblem(data);
        if (problem) throw new VigilError('CAPTURE_CORRUPT', `${variant} capture is ${problem}`);
        items.push({
          camera: capture.camera,
          imagePath: this.pathFor(capture.camera, capture.capturedAt, variant),
          capturedAt: capture.capturedAt,
          variant,
          dhash: capture.dhash,
          sha256,
          bytes,
        });
      }
      const need = items.reduce((n, it) => n + it.bytes, 0);
      if (!(await this.makeRoom(need))) {
        counters.inc('captures_dropped_budget');
        throw new VigilError('SPOOL_BUDGET', `capture of ${need} bytes does not fit the spool budget of ${this.o.budgetBytes}`);
      }
      await mkdir(join(this.o.spoolDir, capture.camera), { recursive: true });
      for (const it of items) {
        await durableMove(capture.files[it.variant], it.imagePath);
        moved.push(it.imagePath);
      }
      queue.enqueue(items, clock.now());
    } catch (err) {
      // Not queued: leave no spool file behind that reconcile would later enqueue half-known.
      await Promise.all(moved.map((p) => unlink(p).catch(() => undefined)));
      throw isDiskFull(err) ? new VigilError('DISK_FULL', 'no space left to spool the capture', { cause: err }) : err;
    }
    counters.inc('captures_queued');
    for (const v of VARIANTS) this.o.bus.emit('queue:enqueued', capture.camera, v);
    log.debug({ camera: capture.camera, capturedAt: capture.capturedAt }, 'capture queued');
  };

  /**
   * Evicts until `need` more bytes fit the budget: kept dead letters first, then the oldest
   * originals, then the oldest compressed frames (the ones the vision model needs go last).
   */
  private async makeRoom(need: number): Promise<boolean> {
    const { queue, counters, log, budgetBytes } = this.o;
    if (need > budgetBytes) return false;
    while (queue.spoolBytes() + need > budgetBytes) {
      const dead = queue.oldestDeadFile();
      if (dead) {
        await unlink(dead.path).catch(() => undefined);
        queue.forgetDeadFile(dead.id);
        counters.inc('evicted_dead_letter');
        log.warn({ path: dead.path, bytes: dead.bytes }, 'spool over budget: evicted a dead-letter file');
        continue;
      }
      const victim = queue.oldest('original') ?? queue.oldest('compressed');
      if (!victim) return false;
      await unlink(victim.imagePath).catch(() => undefined);
      queue.remove(victim.id);
      counters.inc(`evicted_${victim.variant}`);
      log.warn(
        { camera: victim.camera, variant: victim.variant, capturedAt: victim.capturedAt, bytes: victim.bytes },
        'spool over budget: evicted the oldest queued frame',
      );
    }
    return true;
  }

  /**
   * Start-up reconciliation of spool and queue: unfinished capture work is deleted, the file
   * of an uploaded item (noted done, a kill came before its unlink) is removed, any other spool
   * file without a row is enqueued (its dHash recomputed), a row without a file is dropped.
   */
  async reconcile(): Promise<{ enqueued: number; dropped: number; removed: number }> {
    const { queue, counters, clock, log, spoolDir } = this.o;
    await mkdir(spoolDir, { recursive: true });
    await rm(this.workDir, { recursive: true, force: true });
    await mkdir(this.workDir, { recursive: true });
    const known = queue.knownPaths();
    const done = queue.donePaths();
    let enqueued = 0;
    let removed = 0;
    const seen = new Set<string>();
    for (const camera of await readdir(spoolDir)) {
      if (camera === WORK_DIR_NAME) continue;
      const dir = join(spoolDir, camera);
      if (!(await stat(dir)).isDirectory()) continue;
      for (const name of await readdir(dir)) {
        const path = join(dir, name);
        seen.add(path);
        if (known.has(path)) continue;
        if (done.has(path)) {
          await rm(path, { force: true });
          removed++;
          counters.inc('reconcile_removed_uploaded');
          log.info({ path }, 'reconcile: removed the file of an uploaded frame');
          continue;
        }
        const m = SPOOL_NAME_RE.exec(name);
        const variant = m?.[2];
        if (!m || !isVariant(variant)) {
          await rm(path, { force: true, recursive: true });
          removed++;
          log.warn({ path }, 'reconcile: removed a file that is not a spool frame');
          continue;
        }
        try {
          const { bytes, sha256, data } = await hashFile(path);
          const problem = jpegProblem(data);
          if (problem) throw new VigilError('CAPTURE_CORRUPT', `spool file is ${problem}`);
          const item = { camera, imagePath: path, capturedAt: Number(m[1]), variant, sha256, bytes, dhash: await dhashOfJpeg(path, this.o.ffmpegPath) };
          queue.enqueue([item], clock.now());
          enqueued++;
          counters.inc('reconcile_enqueued');
          log.warn({ path }, 'reconcile: spool file had no queue row; enqueued');
        } catch (err) {
          await rm(path, { force: true });
          removed++;
          counters.inc('reconcile_removed_corrupt');
          log.error({ path, err: errorCode(err) ?? String(err) }, 'reconcile: unreadable spool file removed');
        }
      }
    }
    for (const path of done) queue.forgetDone(path);
    let dropped = 0;
    for (const path of known) {
      if (seen.has(path)) continue;
      dropped += queue.forgetPath(path);
      log.warn({ file: basename(path) }, 'reconcile: queue row without spool file');
    }
    if (dropped) {
      counters.inc('reconcile_dropped_rows', dropped);
      log.error({ dropped }, 'reconcile: queue rows without a spool file dropped');
    }
    return { enqueued, dropped, removed };
  }
}

export function isDiskFull(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ENOSPC' || code === 'SQLITE_FULL' || code === 'DISK_FULL' || code === 'EDQUOT';
}
