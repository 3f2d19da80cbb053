import type { FastifyInstance } from 'fastify';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { buildApp } from './app.js';
import { parseConfig, type CloudConfig, type CloudConfigInput } from './config.js';
import type { AppContext } from './context.js';
import { ConfigError } from './errors.js';
import { loadOrCreateSecret } from './lib/secrets.js';
import { FolderStore } from './objects/folder-store.js';
import { UrlSigner } from './objects/url-signer.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { CloudStore } from './store/types.js';

/** How long close() lets requests in flight finish before it cuts their connections. */
export const CLOSE_GRACE_MS = 5_000;

export const DB_FILE = 'cloud.db';
export const OBJECTS_DIR = 'objects';
export const ADMIN_TOKEN_FILE = 'admin-token';
export const SIGNING_KEY_FILE = 'url-signing-key';

export interface CloudDeps {
  /** Defaults to pino on stdout at config.logLevel. */
  logger?: Logger;
  /** Unix epoch milliseconds; defaults to Date.now. */
  now?: () => number;
}

export interface RunningCloud {
  /** http://host:port as bound (port 0 resolved). */
  url: string;
  port: number;
  app: FastifyInstance;
  adminToken: string;
  config: CloudConfig;
  store: CloudStore;
  /** Where objects are kept, for tests and tools that look at the files. */
  objectsDir: string;
  folder: FolderStore;
  /** Stops listening (the port is free when this resolves) and closes the database. */
  close(): Promise<void>;
}

/** Opens the store and the object folder under config.dataDir (creating secrets on first start). */
export async function openCloudParts(config: CloudConfig, logger: Logger): Promise<{ store: SqliteStore; folder: FolderStore; adminToken: string; objectsDir: string }> {
  try {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError(`dataDir ${config.dataDir} (VIGIL_CLOUD_DATA_DIR) cannot be created: ${(err as Error).message}`);
  }
  let adminToken = config.adminToken;
  if (!adminToken) {
    const s = loadOrCreateSecret(config.dataDir, ADMIN_TOKEN_FILE);
    adminToken = s.value;
    // Logged once, when generated: the operator needs it to log in and issue claim codes.
    if (s.created) logger.warn({ adminToken, path: s.path }, 'generated an admin token (kept in the data dir; set VIGIL_ADMIN_TOKEN to choose one)');
  }
  const signingKey = config.urlSigningKey ?? loadOrCreateSecret(config.dataDir, SIGNING_KEY_FILE).value;
  const objectsDir = join(config.dataDir, OBJECTS_DIR);
  const store = new SqliteStore(join(config.dataDir, DB_FILE));
  try {
    const folder = await FolderStore.open({
      root: objectsDir,
      signer: new UrlSigner(signingKey),
      maxObjectBytes: config.maxObjectBytes,
      presignTtlMs: config.presignTtlS * 1000,
    });
    return { store, folder, adminToken, objectsDir };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Starts the cloud on the embedded default (SQLite + object folder). */
export async function startCloud(input: CloudConfigInput, deps: CloudDeps = {}): Promise<RunningCloud> {
  const config = parseConfig(input);
  const logger = deps.logger ?? pino({ level: config.logLevel });
  const { store, folder, adminToken, objectsDir } = await openCloudParts(config, logger);
  const ctx: AppContext = { config, store, objects: folder, folder, adminToken, now: deps.now ?? Date.now };
  let app: FastifyInstance;
  try {
    app = await buildApp(ctx, logger);
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await store.close();
    throw err;
  }
  const { port } = app.server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  logger.info({ url, publicUrl: config.publicUrl, dataDir: config.dataDir }, 'vigil cloud listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const deadline = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearTimeout(deadline);
        await store.close();
      }
    })());
  return { url, port, app, adminToken, config, store, objectsDir, folder, close };
}
