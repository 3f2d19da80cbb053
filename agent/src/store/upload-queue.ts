import type { Variant } from '@vigil/protocol';
import type { Db } from './db.js';

export interface NewQueueItem {
  camera: string;
  imagePath: string;
  capturedAt: number;
  variant: Variant;
  dhash: string;
  sha256: string;
  bytes: number;
}

export interface QueueItem extends NewQueueItem {
  id: number;
  attemptCount: number;
  nextRetryAt: number;
  firstFailedAt: number | null;
  lastError: string | null;
  createdAt: number;
}

interface Row {
  id: number;
  camera_mac: string;
  image_path: string;
  unix_timestamp: number;
  variant_type: Variant;
  perceptual_hash: string;
  sha256: string;
  bytes: number;
  attempt_count: number;
  next_retry_at: number;
  first_failed_at: number | null;
  last_error: string | null;
  created_at: number;
}

function toItem(r: Row): QueueItem {
  return {
    id: r.id,
    camera: r.camera_mac,
    imagePath: r.image_path,
    capturedAt: r.unix_timestamp,
    variant: r.variant_type,
    dhash: r.perceptual_hash,
    sha256: r.sha256,
    bytes: r.bytes,
    attemptCount: r.attempt_count,
    nextRetryAt: r.next_retry_at,
    firstFailedAt: r.first_failed_at,
    lastError: r.last_error,
    createdAt: r.created_at,
  };
}

export interface QueueDepth {
  camera: string;
  variant: Variant;
  count: number;
  oldestCapturedAt: number;
}

/**
 * The durable outbox table. A row exists exactly while its spool file waits for the cloud;
 * dead letters are moved, never deleted silently.
 */
export class UploadQueue {
  readonly #insert;
  readonly #nextReady;
  readonly #readyCount;
  readonly #soonest;
  readonly #remove;
  readonly #fail;
  readonly #toDead;
  readonly #depth;
  readonly #oldest;
  readonly #usage;
  readonly #paths;
  readonly #deadCount;
  readonly #get;
  readonly #ledger;
  readonly #oldestDeadFile;
  readonly #forgetDeadFile;
  readonly #removeByPath;
  readonly #markDone;
  readonly #forgetDone;
  readonly #done;
  readonly #forgetDeadPath;

  constructor(private readonly db: Db) {
    this.#insert = db.prepare(
      `INSERT INTO upload_queue (camera_mac, image_path, unix_timestamp, variant_type, perceptual_hash, sha256, bytes, created_at)
       VALUES (@camera, @imagePath, @capturedAt, @variant, @dhash, @sha256, @bytes, @now)`,
    );
    // A retry time further ahead than the backoff cap means the wall clock jumped back: treat it as due.
    const due = '(next_retry_at <= @now OR next_retry_at > @now + @maxDelay)';
    this.#nextReady = db.prepare<Record<string, unknown>, Row>(
      `SELECT * FROM upload_queue WHERE camera_mac = @camera AND variant_type = @variant AND ${due}
       ORDER BY unix_timestamp, id LIMIT 1`,
    );
    this.#readyCount = db.prepare<Record<string, unknown>, { n: number }>(
      `SELECT count(*) AS n FROM upload_queue WHERE camera_mac = @camera AND variant_type = @variant AND ${due}`,
    );
    this.#soonest = db.prepare<[string, string], { t: number | null }>(
      'SELECT min(next_retry_at) AS t FROM upload_queue WHERE camera_mac = ? AND variant_type = ?',
    );
    this.#remove = db.prepare('DELETE FROM upload_queue WHERE id = ?');
    this.#fail = db.prepare(
      `UPDATE upload_queue SET attempt_count = attempt_count + @inc, next_retry_at = @nextRetryAt,
         first_failed_at = CASE WHEN @inc = 1 THEN coalesce(first_failed_at, @now) ELSE first_failed_at END,
         last_error = @error WHERE id = @id`,
    );
    this.#toDead = db.prepare(
      `INSERT INTO dead_letters (camera_mac, image_path, unix_timestamp, variant_type, perceptual_hash, sha256, bytes,
         attempt_count, reason, last_error, created_at, dead_at)
       SELECT camera_mac, CASE WHEN @keepFile THEN image_path END, unix_timestamp, variant_type, perceptual_hash, sha256, bytes,
         attempt_count, @reason, @error, created_at, @now FROM upload_queue WHERE id = @id`,
    );
    this.#depth = db.prepare<[], QueueDepth>(
      `SELECT camera_mac AS camera, variant_type AS variant, count(*) AS count, min(unix_timestamp) AS oldestCapturedAt
       FROM upload_queue GROUP BY camera_mac, variant_type ORDER BY camera_mac, variant_type`,
    );
    this.#oldest = db.prepare<[string], Row>(
      'SELECT * FROM upload_queue WHERE variant_type = ? ORDER BY unix_timestamp, id LIMIT 1',
    );
    this.#usage = db.prepare<[], { n: number }>(
      `SELECT (SELECT coalesce(sum(bytes), 0) FROM upload_queue)
            + (SELECT coalesce(sum(bytes), 0) FROM dead_letters WHERE image_path IS NOT NULL) AS n`,
    );
    this.#paths = db.prepare<[], { p: string }>(
      'SELECT image_path AS p FROM upload_queue UNION ALL SELECT image_path FROM dead_letters WHERE image_path IS NOT NULL',
    );
    this.#deadCount = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM dead_letters');
    this.#get = db.prepare<[number], Row>('SELECT * FROM upload_queue WHERE id = ?');
    this.#ledger = db.prepare(
      `INSERT INTO counters (name, value) VALUES ('frames_enqueued', ?)
       ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`,
    );
    this.#oldestDeadFile = db.prepare<[], { id: number; path: string; bytes: number }>(
      'SELECT id, image_path AS path, bytes FROM dead_letters WHERE image_path IS NOT NULL ORDER BY unix_timestamp, id LIMIT 1',
    );
    this.#forgetDeadFile = db.prepare('UPDATE dead_letters SET image_path = NULL WHERE id = ?');
    this.#removeByPath = db.prepare('DELETE FROM upload_queue WHERE image_path = ?');
    this.#markDone = db.prepare('INSERT OR IGNORE INTO spool_done (path) VALUES (?)');
    this.#forgetDone = db.prepare('DELETE FROM spool_done WHERE path = ?');
    this.#done = db.prepare<[], { path: string }>('SELECT path FROM spool_done');
    this.#forgetDeadPath = db.prepare('UPDATE dead_letters SET image_path = NULL WHERE image_path = ?');
  }

  /**
   * Inserts all items in one transaction: both variants of a capture are queued, or neither.
   * The `frames_enqueued` counter moves in the same transaction, so it is an exact ledger of
   * what reached the queue, whatever moment the process dies at.
   */
  enqueue(items: readonly NewQueueItem[], now: number): void {
    this.db.transaction(() => {
      for (const it of items) this.#insert.run({ ...it, now });
      this.#ledger.run(items.length);
    })();
  }

  nextReady(camera: string, variant: Variant, now: number, maxDelayMs: number): QueueItem | undefined {
    const r = this.#nextReady.get({ camera, variant, now, maxDelay: maxDelayMs });
    return r && toItem(r);
  }

  readyCount(camera: string, variant: Variant, now: number, maxDelayMs: number): number {
    return this.#readyCount.get({ camera, variant, now, maxDelay: maxDelayMs })?.n ?? 0;
  }

  /** Earliest retry time among this uploader's rows, or undefined when it has none. */
  soonestRetryAt(camera: string, variant: Variant): number | undefined {
    return this.#soonest.get(camera, variant)?.t ?? undefined;
  }

  get(id: number): QueueItem | undefined {
    const r = this.#get.get(id);
    return r && toItem(r);
  }

  remove(id: number): void {
    this.#remove.run(id);
  }

  /** The item is uploaded: its row goes and its file is noted as done, in one transaction, until unlinked. */
  complete(id: number, path: string): void {
    this.db.transaction(() => {
      this.#remove.run(id);
      this.#markDone.run(path);
    })();
  }

  /** The done file is gone (unlinked, or found missing). */
  forgetDone(path: string): void {
    this.#forgetDone.run(path);
  }

  /** Files of uploaded items not yet unlinked (a kill came between). */
  donePaths(): Set<string> {
    return new Set(this.#done.all().map((r) => r.path));
  }

  /**
   * Records a failed try. `countAttempt` is false when the failure says nothing about the item
   * (cloud unreachable, rate limited): then neither the attempt count nor the give-up clock moves.
   */
  recordFailure(id: number, f: { nextRetryAt: number; error: string; now: number; countAttempt: boolean }): void {
    this.#fail.run({ id, nextRetryAt: f.nextRetryAt, error: f.error, now: f.now, inc: f.countAttempt ? 1 : 0 });
  }

  /** Moves a row to dead_letters. `keepFile` keeps the spool file referenced (kept for inspection). */
  deadLetter(id: number, reason: string, error: string, keepFile: boolean, now: number): void {
    this.db.transaction(() => {
      this.#toDead.run({ id, reason, error, keepFile: keepFile ? 1 : 0, now });
      this.#remove.run(id);
    })();
  }

  depth(): QueueDepth[] {
    return this.#depth.all();
  }

  oldest(variant: Variant): QueueItem | undefined {
    const r = this.#oldest.get(variant);
    return r && toItem(r);
  }

  /** Bytes of spool files the database accounts for (queued + kept dead letters). */
  spoolBytes(): number {
    return this.#usage.get()?.n ?? 0;
  }

  knownPaths(): Set<string> {
    return new Set(this.#paths.all().map((r) => r.p));
  }

  /** The oldest dead letter whose file is still kept (first to go under disk pressure). */
  oldestDeadFile(): { id: number; path: string; bytes: number } | undefined {
    return this.#oldestDeadFile.get();
  }

  forgetDeadFile(id: number): void {
    this.#forgetDeadFile.run(id);
  }

  /** Forgets every record of a spool file that no longer exists; returns the queue rows dropped. */
  forgetPath(path: string): number {
    return this.db.transaction(() => {
      this.#forgetDeadPath.run(path);
      return this.#removeByPath.run(path).changes;
    })();
  }

  deadLetterCount(): number {
    return this.#deadCount.get()?.n ?? 0;
  }
}
