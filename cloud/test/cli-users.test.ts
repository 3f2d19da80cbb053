import t, { type Test } from 'tap';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { testDatabaseUrl } from '../../test/helpers/postgres.js';
import { runCli, type CliIo } from '../src/cli-commands.js';
import { openStore } from '../src/store/open-store.js';
import type { PasswordInput } from '../src/users/password-input.js';
import { UserLogin } from '../src/users/user-login.js';
import { tempDir } from './helpers.js';

// vigil-cloud user add / passwd / disable / list through runCli, on a data dir of its own:
// passwords piped on stdin (one line), from VIGIL_USER_PASSWORD, or typed at a (fake)
// terminal without echo. The result is checked by logging in against the same database (the
// data dir's SQLite file, or under VIGIL_TEST_DATABASE=postgres a PostgreSQL database of its own
// that the CLI is given as VIGIL_DATABASE_URL, as an operator would).

interface Run extends CliIo {
  lines: { out: string[]; err: string[]; prompt: string[] };
}

function io(stdin: string | PasswordInput = ''): Run {
  const lines = { out: [] as string[], err: [] as string[], prompt: [] as string[] };
  return {
    lines,
    out: (l) => lines.out.push(l),
    err: (l) => lines.err.push(l),
    prompt: (text) => lines.prompt.push(text),
    input: typeof stdin === 'string' ? (Readable.from([Buffer.from(stdin)]) as PasswordInput) : stdin,
  };
}

/** The CLI's environment for a data dir of its own, and its database when that is PostgreSQL. */
async function cliEnv(t: Test): Promise<Record<string, string>> {
  const dataDir = tempDir(t);
  const url = await testDatabaseUrl(t, dataDir);
  return { VIGIL_CLOUD_DATA_DIR: dataDir, ...(url ? { VIGIL_DATABASE_URL: url } : {}) };
}

/** Logs in against the CLI's database (as the server would), giving the error code or 'ok'. */
async function tryLogin(env: Record<string, string>, name: string, password: string): Promise<string> {
  const store = await openStore({ dataDir: env.VIGIL_CLOUD_DATA_DIR!, databaseUrl: env.VIGIL_DATABASE_URL, databasePoolSize: 2 });
  try {
    return await new UserLogin(store.users, Date.now).login(name, password).then(
      () => 'ok',
      (e: { code: string }) => e.code,
    );
  } finally {
    await store.close();
  }
}

/** A terminal: raw mode switchable, keys arrive as 'data' events once it reads. */
class FakeTty extends EventEmitter {
  readonly isTTY = true;
  raw: boolean[] = [];
  readonly #keys: string[];

  constructor(keys: string[]) {
    super();
    this.#keys = keys;
  }

  setRawMode(raw: boolean): this {
    this.raw.push(raw);
    return this;
  }

  resume(): this {
    const key = this.#keys.shift();
    if (key !== undefined) setImmediate(() => this.emit('data', Buffer.from(key)));
    return this;
  }

  pause(): this {
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    throw new Error('a terminal is read key by key, not as a stream');
  }
}

t.test('user add, list, passwd, disable with the password piped on stdin or in the env', async (t) => {
  const env = await cliEnv(t);

  const add = io('first long password\nignored second line\n');
  t.equal(await runCli(['user', 'add', 'ana'], add, env), 0);
  t.same(add.lines.out, ['added user ana']);
  t.same(add.lines.prompt, [], 'no prompt when stdin is a pipe');
  t.equal(await tryLogin(env, 'ana', 'first long password'), 'ok', 'the first line is the password');
  t.equal(await tryLogin(env, 'ana', 'ignored second line'), 'LOGIN_FAILED');

  t.equal(await runCli(['user', 'add', 'bo'], io('bo password here\r\n'), env), 0, 'CRLF from a Windows pipe');
  t.equal(await tryLogin(env, 'bo', 'bo password here'), 'ok');

  await t.rejects(runCli(['user', 'add', 'ANA'], io('another long password\n'), env), { code: 'USER_EXISTS', message: 'a user "ANA" already exists' }, 'names ignore case');
  await t.rejects(runCli(['user', 'add', 'cy'], io('short\n'), env), { code: 'PASSWORD_REJECTED', message: /too short: at least 10 characters/ });
  await t.rejects(runCli(['user', 'add', 'cy'], io(''), env), { code: 'CONFIG_INVALID', message: /no password given.*VIGIL_USER_PASSWORD/ });
  await t.rejects(runCli(['user', 'add', 'no spaces'], io('long enough password\n'), env), { code: 'CONFIG_INVALID', message: /user name "no spaces"/ });
  await t.rejects(runCli(['user', 'add'], io(), env), { code: 'CONFIG_INVALID', message: /exactly one NAME/ });
  await t.rejects(runCli(['user', 'frob'], io(), env), { code: 'CONFIG_INVALID', message: /add, passwd, disable or list/ });

  const list = io();
  t.equal(await runCli(['user', 'list'], list, env), 0);
  t.equal(list.lines.out.length, 2);
  t.match(list.lines.out[0], /^ana\tadmin\tactive\tcreated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.match(list.lines.out[1], /^bo\tadmin\tactive\t/);

  const passwd = io('ignored: the env wins\n');
  t.equal(await runCli(['user', 'passwd', 'ana'], passwd, { ...env, VIGIL_USER_PASSWORD: 'second long password' }), 0);
  t.match(passwd.lines.out, [/changed the password of ana; their sessions have ended/]);
  t.equal(await tryLogin(env, 'ana', 'first long password'), 'LOGIN_FAILED', 'the old password is gone');
  t.equal(await tryLogin(env, 'ana', 'second long password'), 'ok');
  await t.rejects(runCli(['user', 'passwd', 'nobody'], io('long enough password\n'), env), { code: 'USER_NOT_FOUND', message: 'no user "nobody"' });

  const disable = io();
  t.equal(await runCli(['user', 'disable', 'ana'], disable, env), 0);
  t.match(disable.lines.out, [/disabled ana/]);
  t.equal(await tryLogin(env, 'ana', 'second long password'), 'LOGIN_FAILED', 'a disabled user cannot log in');
  const after = io();
  await runCli(['user', 'list'], after, env);
  t.match(after.lines.out[0], /^ana\tadmin\tdisabled since \d{4}-/);
  await t.rejects(runCli(['user', 'disable', 'nobody'], io(), env), { code: 'USER_NOT_FOUND' });

  t.equal(await runCli(['user', 'passwd', 'ana'], io('third long password\n'), env), 0);
  t.equal(await tryLogin(env, 'ana', 'third long password'), 'ok', 'a new password enables the user again');
});

t.test('user list on an empty database says how to add one', async (t) => {
  const r = io();
  t.equal(await runCli(['user', 'list'], r, await cliEnv(t)), 0);
  t.same(r.lines.out, []);
  t.match(r.lines.err, [/no users yet: vigil-cloud user add NAME/]);
});

t.test('at a terminal: asked twice without echo; backspace works; a mismatch or Ctrl-C changes nothing', async (t) => {
  const env = await cliEnv(t);

  const tty = new FakeTty(['tty passwordX\u007f', '!\r', 'tty password!\r']);
  // Keys arrive one 'data' event per resume(); the first prompt needs two.
  tty.on('data', (chunk: Buffer) => {
    if (!chunk.toString().includes('\r')) tty.resume();
  });
  const run = io(tty);
  t.equal(await runCli(['user', 'add', 'dee'], run, env), 0);
  t.same(run.lines.prompt, ['New password: ', '\n', 'Again: ', '\n'], 'only the prompts are written: no echo');
  t.same(tty.raw, [true, false, true, false], 'raw mode on while typing, off after');
  t.equal(await tryLogin(env, 'dee', 'tty password!'), 'ok');

  await t.rejects(runCli(['user', 'passwd', 'dee'], io(new FakeTty(['one long password\r', 'two long password\r'])), env), {
    code: 'CONFIG_INVALID',
    message: /two passwords differ; nothing changed/,
  });
  const cancelled = new FakeTty(['abc\u0003']);
  await t.rejects(runCli(['user', 'passwd', 'dee'], io(cancelled), env), { code: 'CONFIG_INVALID', message: /cancelled/ });
  t.same(cancelled.raw, [true, false], 'the terminal is given back after Ctrl-C');
  t.equal(await tryLogin(env, 'dee', 'tty password!'), 'ok', 'still the old password');
});
