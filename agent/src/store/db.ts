import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { isSea } from 'node:sea';
import { VigilError } from '../lib/errors.js';

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
  // 2: the camera registry (cameras/camera-registry.ts). Keyed by MAC, else serial, else the
  // WS-Discovery endpoint, never by IP; camera_changes keeps what happened when (bounded).
  `CREATE TABLE cameras (
     key                TEXT    PRIMARY KEY,
     source             TEXT    NOT NULL CHECK (source IN ('onvif', 'config')),
     name               TEXT    NOT NULL,
     manufacturer       TEXT,
     model              TEXT,
     firmware           TEXT,
     serial             TEXT,
     mac                TEXT,
     endpoint           TEXT,
     address            TEXT,
     xaddr              TEXT,
     stream_uri         TEXT,
     snapshot_uri       TEXT,
     present            INTEGER NOT NULL,
     missed_rounds      INTEGER NOT NULL DEFAULT 0,
     first_seen_at      INTEGER NOT NULL,
     last_seen_at       INTEGER NOT NULL,
     address_changed_at INTEGER,
     last_error_code    TEXT,
     last_error_message TEXT,
     last_error_at      INTEGER
   );
   CREATE UNIQUE INDEX cameras_mac ON cameras (mac) WHERE mac IS NOT NULL;
   CREATE INDEX cameras_endpoint ON cameras (endpoint);
   CREATE TABLE camera_changes (
     id               INTEGER PRIMARY KEY,
     camera_key       TEXT    NOT NULL,
     change           TEXT    NOT NULL,
     at               INTEGER NOT NULL,
     address          TEXT,
     previous_address TEXT,
     detail           TEXT
   );
   CREATE INDEX camera_changes_camera ON camera_changes (camera_key, id);`,
  // 3: spool files whose item is uploaded, until they are unlinked. The row goes and the path
  // comes here in one transaction: a kill before the unlink leaves a file that start-up
  // reconciliation removes instead of enqueuing it again (it would upload, and count, twice).
  `CREATE TABLE spool_done (path TEXT PRIMARY KEY);`,
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
  const db = new Database(path, sqliteOptions(sqliteBindingPath()));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/** better-sqlite3's native addon as a side file of the single executable (docs/agent-bin.md). */
export const SQLITE_BINDING_FILE = 'better_sqlite3.node';

export interface BindingLookup {
  env?: NodeJS.ProcessEnv;
  execPath?: string;
  exists?: (path: string) => boolean;
  sea?: boolean;
}

/**
 * Where better-sqlite3's native addon is loaded from: VIGIL_SQLITE_BINDING, else
 * better_sqlite3.node beside the executable, else undefined (normal module resolution, as in
 * development). The single executable carries no node_modules: shipping the addon beside it
 * means nothing is unpacked at run time, which a read-only root needs.
 */
export function sqliteBindingPath(o: BindingLookup = {}): string | undefined {
  const env = o.env ?? process.env;
  if (env.VIGIL_SQLITE_BINDING) return resolve(env.VIGIL_SQLITE_BINDING);
  const beside = join(dirname(o.execPath ?? process.execPath), SQLITE_BINDING_FILE);
  if ((o.exists ?? existsSync)(beside)) return beside;
  if (o.sea ?? isSea()) {
    throw new VigilError('SQLITE_BINDING_MISSING', `SQLite's native addon is missing: expected ${beside} (or set VIGIL_SQLITE_BINDING)`);
  }
  return undefined;
}

/**
 * The addon is loaded here and handed over as an object (better-sqlite3 13 accepts one; its
 * types only say string): inside the single executable the bundled require() loads built-in
 * modules only, so better-sqlite3 could not load a path itself.
 */
function sqliteOptions(bindingPath: string | undefined): Database.Options {
  if (bindingPath === undefined) return {};
  const addon = createRequire(import.meta.url)(bindingPath) as object;
  return { nativeBinding: addon } as unknown as Database.Options;
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
