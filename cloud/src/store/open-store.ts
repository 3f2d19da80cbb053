import { join } from 'node:path';
import type { CloudConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { PgStore } from './pg-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { CloudStore } from './types.js';

/** The embedded database's file in the data dir. */
export const DB_FILE = 'cloud.db';

/** The configured store: PostgreSQL when databaseUrl is set, else SQLite in the data dir. */
export async function openStore(config: Pick<CloudConfig, 'dataDir' | 'databaseUrl' | 'databasePoolSize'>): Promise<CloudStore> {
  if (!config.databaseUrl) return new SqliteStore(join(config.dataDir, DB_FILE));
  try {
    return await PgStore.open({ url: config.databaseUrl, poolSize: config.databasePoolSize });
  } catch (err) {
    // The URL may carry a password: name the server, not the URL.
    const u = new URL(config.databaseUrl);
    throw new ConfigError(`PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname} (VIGIL_DATABASE_URL): ${(err as Error).message}`);
  }
}
