import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Db = Database.Database;

// Forward-only migrations, applied in order inside one transaction at start-up.
// The upload_queue columns keep the names of the system this one replaces; sha256 and bytes
// are what end-to-end integrity needs.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE upload_queue (
     id              INTEGER PRIMARY KEY,
     camera_mac      TEXT    NOT NULL,
     image_path      TEXT    NOT NULL UNIQUE,
     unix_timestamp  INTEGER NOT NULL,
     variant_type    TEXT    NOT NULL CHECK (variant_type IN ('compressed', 'original')),
     perceptual_hash TEXT    NOT NULL,
     sha256          TEXT    NOT NULL,
     bytes           INTEGER NOT NULL,
     attempt_count   INTEGER NOT NULL DEFAULT 0,
     next_retry_at   INTEGER NOT NULL DEFAULT 0,
     first_failed_at INTEGER,
     last_error      TEXT,
     created_at      INTEGER NOT NULL,
     UNIQUE (camera_mac, unix_timestamp, variant_type)
   );
   CREATE INDEX upload_queue_ready ON upload_queue (camera_mac, variant_type, unix_timestamp);
   CREATE TABLE dead_letters (
     id              INTEGER PRIMARY KEY,
     camera_mac      TEXT    NOT NULL,
     image_path      TEXT,
     unix_timestamp  INTEGER NOT NULL,
     variant_type    TEXT    NOT NULL,
     perceptual_hash TEXT    NOT NULL,
     sha256          TEXT    NOT NULL,
     bytes           INTEGER NOT NULL,
     attempt_count   INTEGER NOT NULL,
     reason          TEXT    NOT NULL,
     last_error      TEXT,
     created_at      INTEGER NOT NULL,
     dead_at         INTEGER NOT NULL
   );
   CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
   CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, updated_at INTEGER NOT NULL);`,
];

/**
 * Opens the agent database with explicit pragmas.
 *
 * journal_mode=WAL: readers never block the writer (the CLI may read while the agent runs).
 * synchronous=FULL: in WAL mode NORMAL only syncs at checkpoints, so the last transactions can
 * roll back on a power cut; FULL syncs the WAL on every commit. A commit here means "this
 * capture is safe" — the outbox's promise — and costs one fsync per capture pair, which the
 * bench shows is far below the capture rate.
 */
export function openDb(path: string): Db {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this agent (${MIGRATIONS.length})`);
  }
  db.transaction(() => {
    for (let v = current; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  })();
}
