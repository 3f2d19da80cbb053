import { parseArgs } from 'node:util';
import { issueClaimCode } from './claim-codes.js';
import { CONFIG_FLAGS, loadConfig, type CloudConfig } from './config.js';
import { CloudError, ConfigError } from './errors.js';
import { startCloud } from './main.js';
import { openStore } from './store/open-store.js';
import type { CloudStore } from './store/types.js';
import { readNewPassword, type PasswordInput } from './users/password-input.js';
import { addUser, checkUserName, describeUser, disableUser, requireUser, setUserPassword } from './users/user-admin.js';

const USAGE = `vigil-cloud — the Vigil ingest service (embedded SQLite + object folder)

usage:
  vigil-cloud [serve] [options]             run the HTTP service
  vigil-cloud claim-code --site NAME [--ttl 24h]
                                            print a one-time claim code for a site
  vigil-cloud revoke --device ID            revoke every token of a device
  vigil-cloud user add NAME                 a dashboard user (password: see below)
  vigil-cloud user passwd NAME              a new password (also enables the user again)
  vigil-cloud user disable NAME             no more logins; ends the user's sessions
  vigil-cloud user list

passwords are read from stdin (a prompt without echo at a terminal, else the first line)
  or from VIGIL_USER_PASSWORD; at least 10 characters

options (each also an env var, see config.ts):
  --host H (VIGIL_CLOUD_HOST)  --port N (VIGIL_CLOUD_PORT)  --data-dir D (VIGIL_CLOUD_DATA_DIR)
  --public-url U  --max-object-bytes N  --presign-ttl-s N  --device-rate-limit N
  --rate-limit-window-ms N  --claim-code-ttl-s N  --log-level L
fleet watch: --fleet-sweep-interval-s N  --device-silent-s N  --camera-silent-s N
  --frozen-frames N  --frozen-max-distance BITS  --backlog-heartbeats N  --backlog-min-age-s N
webhooks: --webhook-timeout-s N  --webhook-max-attempts N (URLs: VIGIL_WEBHOOK_URLS)
triage: --triage-base-url U  --triage-model M  --triage-timeout-s N
secrets come from the environment only: VIGIL_ADMIN_TOKEN, VIGIL_URL_SIGNING_KEY,
  VIGIL_WEBHOOK_URLS, VIGIL_WEBHOOK_SECRET, VIGIL_TRIAGE_API_KEY`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Where `user add` and `user passwd` read the password (default: process.stdin). */
  input?: PasswordInput;
  /** Writes a prompt without a newline (default: process.stderr). */
  prompt?: (text: string) => void;
}

const TTL_UNITS_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "90", "90s", "30m", "24h", "7d" → seconds. */
export function parseTtl(s: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(s.trim());
  if (!m) throw new ConfigError(`--ttl: "${s}" is not a duration like 3600, 30m, 24h or 7d`);
  return Number(m[1]) * TTL_UNITS_S[m[2] || 's']!;
}

/** Runs one command; resolves with the exit code. `serve` resolves when the server has stopped. */
export async function runCli(argv: string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...CONFIG_FLAGS, site: { type: 'string' }, ttl: { type: 'string' }, device: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const command = positionals[0] ?? 'serve';
  if (values.help || command === 'help') {
    io.out(USAGE);
    return 0;
  }
  const config = loadConfig({ env, flags: values });
  switch (command) {
    case 'serve':
      return serve(config);
    case 'claim-code': {
      if (!values.site) throw new ConfigError('claim-code needs --site NAME');
      const ttlSeconds = values.ttl ? parseTtl(values.ttl) : config.claimCodeTtlS;
      return withStore(config, async (store) => {
        const c = await issueClaimCode(store, { site: values.site!, ttlSeconds, now: Date.now() });
        io.out(c.code);
        io.err(`site "${c.site}" (${c.siteId}); expires ${new Date(c.expiresAt).toISOString()}`);
        return 0;
      });
    }
    case 'revoke': {
      if (!values.device) throw new ConfigError('revoke needs --device ID');
      return withStore(config, async (store) => {
        if (!(await store.revokeDevice(values.device!, Date.now()))) {
          io.err(`no device ${values.device}`);
          return 1;
        }
        io.out(`revoked every token of device ${values.device}`);
        return 0;
      });
    }
    case 'user':
      return userCommand(positionals.slice(1), config, io, env);
    default:
      throw new ConfigError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

/** vigil-cloud user add|passwd|disable NAME, user list. */
async function userCommand(args: string[], config: CloudConfig, io: CliIo, env: NodeJS.ProcessEnv): Promise<number> {
  const [action, name, extra] = args;
  const needsName = action === 'add' || action === 'passwd' || action === 'disable';
  if (!needsName && action !== 'list') throw new ConfigError(`user: expected add, passwd, disable or list, not "${action ?? ''}"\n\n${USAGE}`);
  if (needsName ? name === undefined || extra !== undefined : name !== undefined) {
    throw new ConfigError(needsName ? `user ${action} needs exactly one NAME` : 'user list takes no NAME');
  }
  const password = () =>
    readNewPassword({ env, input: io.input ?? process.stdin, prompt: io.prompt ?? ((text) => void process.stderr.write(text)) });
  return withStore(config, async (store) => {
    switch (action) {
      case 'add': {
        checkUserName(name!);
        if (await store.users.findUser(name!)) throw new CloudError('USER_EXISTS', `a user "${name}" already exists`);
        const user = await addUser(store.users, name!, await password(), Date.now());
        io.out(`added user ${user.name}`);
        return 0;
      }
      case 'passwd':
        await requireUser(store.users, name!);
        await setUserPassword(store.users, name!, await password(), Date.now());
        io.out(`changed the password of ${name}; their sessions have ended`);
        return 0;
      case 'disable':
        await disableUser(store.users, name!, Date.now());
        io.out(`disabled ${name}; their sessions have ended (user passwd enables them again)`);
        return 0;
      default: {
        const users = await store.users.listUsers();
        if (users.length === 0) io.err('no users yet: vigil-cloud user add NAME');
        for (const u of users) io.out(describeUser(u, Date.now()));
        return 0;
      }
    }
  });
}

/** Commands that only touch the database work beside a running server (WAL, busy timeout). */
async function withStore(config: CloudConfig, fn: (store: CloudStore) => Promise<number>): Promise<number> {
  const store = await openStore(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function serve(config: CloudConfig): Promise<number> {
  const cloud = await startCloud(config);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      // A second signal means "now": exit without waiting for requests in flight.
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      cloud.app.log.info({ signal }, 'shutting down');
      void cloud.close().then(resolve, (err: unknown) => {
        cloud.app.log.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
