// The agent as one executable (docs/agent-bin.md), run the way the device runs it: from a
// read-only directory with its SQLite addon beside it, a read-only HOME, writing only to its
// data dir (every write-like system call is traced with strace), against the real cloud; the
// arm64 build under qemu-user. The file first runs the build script, which is incremental (a
// no-op when the bundle has not changed), so it never tests stale executables.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SQLITE_BINDING_FILE, sqliteBindingPath } from '../src/store/db.js';
import { startTestCloud } from '../../test/helpers/cloud.js';
import { tmpDir, type Teardown } from '../../test/helpers/tmp.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT = join(ROOT, 'build/agent-bin');
const X64 = join(OUT, 'vigil-agent-linux-x64');
const ARM64 = join(OUT, 'vigil-agent-linux-arm64');
const QEMU_ENV = { QEMU_LD_PREFIX: '/usr/aarch64-linux-gnu' };
/** System calls that create, change or remove a file; opens count when they ask for writing. */
const WRITE_CALLS = 'openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,link,linkat,symlink,symlinkat,truncate,chmod,fchmodat,chown,fchownat,utimensat';

t.test('SQLite addon lookup: VIGIL_SQLITE_BINDING, else beside the executable, else the package', async (t) => {
  const execPath = '/usr/lib/vigil-agent/vigil-agent';
  const beside = `/usr/lib/vigil-agent/${SQLITE_BINDING_FILE}`;
  const cases = [
    { name: 'env wins', o: { env: { VIGIL_SQLITE_BINDING: '/x/a.node' }, exists: () => true, sea: true }, want: '/x/a.node' },
    { name: 'beside the executable', o: { env: {}, exists: (p: string) => p === beside, sea: true }, want: beside },
    { name: 'development: the package resolves it', o: { env: {}, exists: () => false, sea: false }, want: undefined },
  ];
  for (const c of cases) t.equal(sqliteBindingPath({ execPath, ...c.o }), c.want, c.name);
  t.throws(() => sqliteBindingPath({ execPath, env: {}, exists: () => false, sea: true }), { code: 'SQLITE_BINDING_MISSING', message: new RegExp(beside) });
  t.equal(sqliteBindingPath({ env: {} }), undefined, 'under plain node here');
});

t.before(async () => {
  // A cold build (npm downloads, apt packages) can outlast the default file timeout.
  t.setTimeout(600_000);
  await run('sh', [join(ROOT, 'scripts/agent-bin.sh')], { cwd: ROOT, timeout: 540_000 });
  t.setTimeout(180_000);
});

/** A device-like setup: config and board serial in `etc`, an empty HOME, a data dir. */
async function device(t: Teardown, config: Record<string, unknown> = {}) {
  const root = await tmpDir(t, 'vigil-agent-bin-');
  const [etc, home, dataDir, traceDir] = ['etc', 'home', 'data', 'trace'].map((d) => join(root, d)) as [string, string, string, string];
  for (const d of [etc, home, traceDir]) mkdirSync(d);
  writeFileSync(join(etc, 'serial'), '10000000c0ffee01\n');
  const configFile = join(etc, 'agent.json');
  writeFileSync(configFile, JSON.stringify({ cloudUrl: 'http://127.0.0.1:9', dataDir, serialSources: [join(etc, 'serial')], ...config }));
  const env = { PATH: '/usr/bin:/bin', HOME: home, VIGIL_LOG_LEVEL: 'info' };
  return { root, etc, home, dataDir, configFile, env, trace: join(traceDir, 'strace.txt') };
}

let canUnshare: boolean | undefined;
async function unshareWorks(): Promise<boolean> {
  canUnshare ??= await run('unshare', ['-m', 'true']).then(
    () => true,
    () => false,
  );
  return canUnshare;
}

/**
 * The command line that runs `cmd` traced by strace and, where a private mount namespace is
 * allowed (root), with `roDirs` mounted read-only. unshare(1) makes the namespace's mounts
 * private by default, so nothing leaks to the machine.
 */
async function sandboxed(t: Teardown & { comment(msg: string): void }, cmd: string[], roDirs: string[], trace: string): Promise<string[]> {
  const traced = ['strace', '-f', '-qq', '-s', '4096', '-e', 'signal=none', '-e', `trace=${WRITE_CALLS}`, '-o', trace, ...cmd];
  if (!(await unshareWorks())) {
    t.comment('no private mount namespace here (needs root): traced only, directories stay writable');
    return traced;
  }
  const script = 'set -e; while [ "$1" != -- ]; do mount --bind "$1" "$1"; mount -o remount,bind,ro "$1"; shift; done; shift; exec "$@"';
  return ['unshare', '-m', 'sh', '-c', script, 'sh', ...roDirs, '--', ...traced];
}

/** Every write-like system call in an strace log whose path is not inside `dataDir`. */
function writesOutside(trace: string, dataDir: string): string[] {
  const bad: string[] = [];
  for (const line of readFileSync(trace, 'utf8').split('\n')) {
    const m = /^\d+\s+(\w+)\((.*)$/.exec(line);
    if (!m) continue;
    const call = m[1]!;
    const args = m[2]!;
    if ((call === 'openat' || call === 'open') && !/O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/.test(args)) continue;
    for (const [, path] of args.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
      if (path !== dataDir && !path!.startsWith(`${dataDir}/`)) bad.push(line);
    }
  }
  return bad;
}

t.test('x64: --help exits 0', async (t) => {
  const r = await run(X64, ['--help'], { env: { PATH: '/usr/bin:/bin' } });
  t.match(r.stdout, /^usage: vigil-agent/);
});

t.test('x64: status from a read-only directory with a read-only HOME writes only its data dir', async (t) => {
  const d = await device(t);
  const cmd = await sandboxed(t, [X64, 'status', '--config', d.configFile], [OUT, d.home, d.etc], d.trace);
  const r = await run(cmd[0]!, cmd.slice(1), { env: d.env, cwd: d.home, timeout: 60_000 });
  const status = JSON.parse(r.stdout) as { queue: unknown[]; hasToken: boolean };
  t.same(status.queue, [], 'a fresh queue: the database opened, so the addon beside the executable loaded');
  t.equal(status.hasToken, false);
  t.same(writesOutside(d.trace, d.dataDir), [], 'no write outside the data dir');
  t.ok(writesOutside(d.trace, join(d.root, 'elsewhere')).some((l) => l.includes('agent.db')), 'the check sees the database writes (it can fail)');
});

t.test('x64: without its side file the executable names the missing file', async (t) => {
  const d = await device(t);
  const lone = join(d.root, 'vigil-agent');
  copyFileSync(X64, lone);
  const r = await run(lone, ['status', '--config', d.configFile], { env: d.env }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  t.equal(r.code, 1);
  t.match(r.stderr, `SQLite's native addon is missing: expected ${join(d.root, SQLITE_BINDING_FILE)}`);
});

t.test('x64: run claims the device from the real cloud, stops on SIGTERM with exit 0, writes only its data dir', async (t) => {
  const cloud = await startTestCloud(t);
  const d = await device(t, { cloudUrl: cloud.url, claimCode: await cloud.claimCode('agent-bin') });
  const cmd = await sandboxed(t, [X64, 'run', '--config', d.configFile], [OUT, d.home, d.etc], d.trace);
  const child = spawn(cmd[0]!, cmd.slice(1), { env: d.env, cwd: d.home, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
  const msgs: string[] = [];
  const claimed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'device claimed' within 60 s; stderr: ${stderr.join(' | ')}`)), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = (JSON.parse(line) as { msg: string }).msg;
      msgs.push(msg);
      if (msg === 'device claimed') {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(() => reject(new Error(`exited before claiming; stderr: ${stderr.join(' | ')}`)));
  });
  await claimed;
  // The spawned process is strace (exec'd by unshare and sh); the agent is its only child.
  const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/);
  t.equal(children.length, 1, 'one agent process');
  process.kill(Number(children[0]), 'SIGTERM');
  const [code, signal] = await exited;
  t.same({ code, signal }, { code: 0, signal: null }, 'clean exit (strace passes on the exit status)');
  t.ok(msgs.includes('agent stopped'), 'logged its stop');
  t.same(writesOutside(d.trace, d.dataDir), [], 'no write outside the data dir');
  const status = await run(X64, ['status', '--config', d.configFile], { env: d.env });
  t.equal((JSON.parse(status.stdout) as { hasToken: boolean }).hasToken, true, 'the token is kept in the data dir');
});

t.test('arm64 under qemu-user: --help and status', async (t) => {
  const d = await device(t);
  const env = { ...d.env, ...QEMU_ENV };
  const help = await run('qemu-aarch64-static', [ARM64, '--help'], { env, timeout: 60_000 });
  t.match(help.stdout, /^usage: vigil-agent/);
  const r = await run('qemu-aarch64-static', [ARM64, 'status', '--config', d.configFile], { env, timeout: 60_000 });
  t.equal((JSON.parse(r.stdout) as { hasToken: boolean }).hasToken, false, 'the arm64 addon beside it loaded');
  t.equal(readFileSync(ARM64).readUInt16LE(18), 0xb7, 'an aarch64 ELF (e_machine EM_AARCH64)');
});
