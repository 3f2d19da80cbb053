import Database from 'better-sqlite3';
import { join } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { migratePostgres, PG_MIGRATIONS } from '../src/store/pg-migrations.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { startPostgres } from '../../test/helpers/postgres.js';
import { tempDir } from './helpers.js';

// The PostgreSQL schema on a real PostgreSQL server (Debian's, on loopback): it applies, it
// applies once when replicas start together, it refuses a newer database, and it has exactly
// the tables, columns and named indexes of the SQLite schema, so the two stores cannot drift.

async function pool(t: Tap, url: string): Promise<pg.Pool> {
  const p = new pg.Pool({ connectionString: url, max: 2 });
  t.teardown(() => p.end());
  return p;
}
type Tap = Parameters<typeof tempDir>[0];

/** table → sorted column names, and the sorted names of the indexes we made. */
function sqliteSchema(path: string): { columns: Record<string, string[]>; indexes: string[] } {
  const db = new Database(path, { readonly: true });
  try {
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as { name: string }[]).map((r) => r.name);
    const columns = Object.fromEntries(tables.map((name) => [name, (db.prepare(`PRAGMA table_info(${name})`).all() as { name: string }[]).map((c) => c.name).sort()]));
    const indexes = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`).all() as { name: string }[]).map((r) => r.name).sort();
    return { columns, indexes };
  } finally {
    db.close();
  }
}

async function pgSchema(p: pg.Pool): Promise<{ columns: Record<string, string[]>; indexes: string[] }> {
  const cols = await p.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_version'`,
  );
  const columns: Record<string, string[]> = {};
  for (const r of cols.rows) (columns[r.table_name] ??= []).push(r.column_name);
  for (const k of Object.keys(columns)) columns[k]!.sort();
  // Primary keys and UNIQUE constraints get indexes of their own (…_pkey, …_key), as SQLite's
  // do (sqlite_autoindex_…, left out above); users_name is how PostgreSQL says COLLATE NOCASE.
  const idx = await p.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE schemaname = 'public'`);
  const indexes = idx.rows.map((r) => r.indexname).filter((n) => !/_(pkey|key)$/.test(n) && n !== 'users_name').sort();
  return { columns, indexes };
}

t.test('the PostgreSQL schema has the tables, columns and indexes of the SQLite one', async (t) => {
  const server = await startPostgres(t);
  const p = await pool(t, server.url);
  t.equal(await migratePostgres(p), PG_MIGRATIONS.length);
  const dir = tempDir(t);
  const store = new SqliteStore(join(dir, 'cloud.db'));
  await store.close();
  const lite = sqliteSchema(join(dir, 'cloud.db'));
  const post = await pgSchema(p);
  t.same(Object.keys(post.columns).sort(), Object.keys(lite.columns).sort(), 'the same tables');
  for (const [table, cols] of Object.entries(lite.columns)) t.same(post.columns[table], cols, `${table}: the same columns`);
  t.same(post.indexes, lite.indexes, 'the same named indexes');
  t.ok(Object.keys(lite.columns).length >= 25, `${Object.keys(lite.columns).length} tables compared`);
});

t.test('migrating is idempotent, safe for replicas starting together, and refuses a newer database', async (t) => {
  const server = await startPostgres(t);
  const [a, b] = [await pool(t, server.url), await pool(t, server.url)];
  const both = await Promise.all([migratePostgres(a), migratePostgres(b)]);
  t.same(both, [PG_MIGRATIONS.length, PG_MIGRATIONS.length], 'two at once: both see the current version');
  t.equal((await a.query('SELECT version FROM schema_version')).rows[0].version, PG_MIGRATIONS.length);
  t.equal((await a.query('SELECT count(*)::int AS n FROM schema_version')).rows[0].n, 1, 'one version row');
  t.equal(await migratePostgres(a), PG_MIGRATIONS.length, 'again: nothing to do');

  // What the schema enforces, as in SQLite: one open alert per (kind, device, camera), user
  // names unique whatever their case, job kinds from the list.
  await a.query(`INSERT INTO users (id, name, password_hash, role, created_at) VALUES ('usr_1', 'Ana', 'x', 'admin', 1)`);
  await t.rejects(a.query(`INSERT INTO users (id, name, password_hash, role, created_at) VALUES ('usr_2', 'ana', 'x', 'admin', 1)`), /users_name/);
  await t.rejects(a.query(`INSERT INTO jobs (kind, ref, state, run_at, created_at, updated_at) VALUES ('other', 'r', 'pending', 1, 1, 1)`), /check/i);
  const job = await a.query(`INSERT INTO jobs (kind, ref, state, run_at, created_at, updated_at) VALUES ('frame', 'frm_1', 'pending', 1, 1, 1) RETURNING id`);
  t.equal(typeof job.rows[0].id, 'string', 'identity ids are BIGINT (node-postgres reads them as strings unless told)');

  await a.query('UPDATE schema_version SET version = $1', [PG_MIGRATIONS.length + 1]);
  await t.rejects(migratePostgres(a), /newer than this cloud/);
});
