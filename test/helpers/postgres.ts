// A throwaway PostgreSQL server for tests: Debian's postgresql (scripts/deps.sh installs it),
// a new cluster in a temp dir, listening on 127.0.0.1 at a free port only, stopped and removed
// at teardown. Nothing starts as a service. PostgreSQL refuses to run as root, so under root
// (CI) the cluster belongs to the `postgres` user the package creates.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';

interface Tap {
  teardown(fn: () => unknown): void;
}

export interface TestPostgres {
  /** postgres://vigil@127.0.0.1:PORT/vigil */
  url: string;
  port: number;
  /** Stops the server at once (a crash, for tests that want one); teardown stops it anyway. */
  stop(): void;
}

/** The newest installed server's bin dir, e.g. /usr/lib/postgresql/15/bin. */
export function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  if (versions.length === 0) throw new Error('PostgreSQL is not installed (scripts/deps.sh installs Debian\'s postgresql)');
  return join(root, versions.sort((a, b) => Number(b) - Number(a))[0]!, 'bin');
}

export async function startPostgres(t: Tap): Promise<TestPostgres> {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), 'vigil-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  const run = (cmd: string, args: string[]) =>
    execFileSync(asRoot ? 'runuser' : join(bin, cmd), asRoot ? ['-u', 'postgres', '--', join(bin, cmd), ...args] : args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'vigil', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  // fsync off: a test cluster need not survive a power cut, and it is much faster.
  const options = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c synchronous_commit=off`;
  run('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  run('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'vigil', 'vigil']);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already gone
    }
  };
  t.teardown(() => {
    stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { url: `postgres://vigil@127.0.0.1:${port}/vigil`, port, stop };
}

let shared: Promise<TestPostgres> | undefined;
const databases = new Map<string, string>();

/**
 * The database a test cloud runs on when the suite runs on PostgreSQL
 * (VIGIL_TEST_DATABASE=postgres), else undefined (SQLite, the default). Each data dir gets its
 * own fresh database, and the same one again when a test restarts a cloud over that data dir.
 * The server is VIGIL_TEST_PG_URL (scripts/test.sh starts one for the whole run) or, when a
 * test file runs on its own, one started for this process.
 */
export async function testDatabaseUrl(t: Tap, dataDir: string): Promise<string | undefined> {
  if (process.env.VIGIL_TEST_DATABASE !== 'postgres') return undefined;
  const known = databases.get(dataDir);
  if (known) return known;
  const server = process.env.VIGIL_TEST_PG_URL ?? (await (shared ??= startPostgres({ teardown: (fn) => process.once('exit', () => void fn()) }))).url;
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(server);
  url.pathname = `/${name}`;
  databases.set(dataDir, url.href);
  t.teardown(async () => {
    databases.delete(dataDir);
    const c = new pg.Client({ connectionString: server });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  });
  return url.href;
}
