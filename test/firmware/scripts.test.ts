// The firmware's shell scripts, run on the host: the watchdog keeper's rules (docs/firmware.md,
// "The watchdog chain"), the kernel-parameter lookup the QEMU test relies on, and the refusals
// of `make flash` and `make image`. A regular file stands in for /dev/watchdog; a loop device,
// when the test runs as root, for an SD card.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { mkdir, copyFile, readFile, stat, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tmpDir, type Teardown } from '../helpers/tmp.js';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OVERLAY = join(ROOT, 'board/common/rootfs-overlay');
const LIB = join(OVERLAY, 'usr/lib/vigil/lib.sh');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds or `ms` pass; returns whether it held. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (check()) return true;
  return check();
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<Result> {
  try {
    const r = await exec(cmd, args, { cwd, env: { ...process.env, ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

const isRoot = process.getuid?.() === 0;

/** The keeper against a fake watchdog (a file): returns how many bytes it fed, sampled over time. */
async function keeper(t: Teardown, settings: Record<string, string>, cmdline = 'console=ttyS0') {
  const dir = await tmpDir(t, 'vigil-wdt-');
  const wdt = join(dir, 'watchdog');
  const hb = join(dir, 'heartbeat');
  const note = join(dir, 'watchdog-reset');
  await writeFile(wdt, '');
  const defaults = Object.entries({
    VIGIL_WATCHDOG_DEVICE: wdt,
    VIGIL_RESET_NOTE: note,
    VIGIL_WATCHDOG_FEED_S: '0.2',
    VIGIL_HEARTBEAT_FILE: hb,
    VIGIL_HEARTBEAT_STALE_S: '1',
    VIGIL_TRIAL_GRACE_S: '100000',
    ...settings,
  })
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  await writeFile(join(dir, 'defaults'), `${defaults}\n`);
  await writeFile(join(dir, 'cmdline'), `${cmdline}\n`);
  let stderr = '';
  const child = spawn('sh', [join(OVERLAY, 'usr/sbin/vigil-watchdog')], {
    env: { ...process.env, VIGIL_LIB: LIB, VIGIL_DEFAULTS_FILE: join(dir, 'defaults'), VIGIL_CMDLINE_FILE: join(dir, 'cmdline') },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true, // its own process group: the teardown kills its sleep too
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  t.teardown(() => {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
    child.stderr.destroy();
  });
  return {
    hb,
    /** The reason the keeper left for the agent's next start, if any. */
    note: async () => readFile(note, 'utf8').catch(() => null),
    fed: async () => (await stat(wdt)).size,
    stderr: () => stderr,
    exited: () => child.exitCode !== null,
  };
}

t.test('watchdog keeper: feeds while the agent beats, stops when the heartbeat goes stale', async (t) => {
  const k = await keeper(t, {});
  await sleep(700);
  t.ok((await k.fed()) > 0, 'fed before the agent ever wrote a heartbeat (the agent may not take part)');
  await writeFile(k.hb, 'ok\n');
  for (let i = 0; i < 6; i++) {
    await sleep(300);
    const now = new Date();
    await utimes(k.hb, now, new Date(now.getTime() + (i + 1) * 1000)); // a fresh beat each time
  }
  const whileBeating = await k.fed();
  await sleep(600);
  t.ok((await k.fed()) > whileBeating, 'still fed while the heartbeat changes');
  // STALE_S=1 on /proc/uptime's whole seconds: stale 2-3 s after the last change
  t.ok(await eventually(() => /no agent heartbeat for \d+s: no longer feeding/.test(k.stderr()), 6000), 'says it stops');
  const afterStale = await k.fed();
  await sleep(800);
  t.equal(await k.fed(), afterStale, 'no longer fed once the heartbeat is stale');
  t.match(await k.note(), /^no agent heartbeat for \d+s\n$/, 'and leaves its reason for the agent\'s next start');
});

t.test('watchdog keeper: the word "reset" in the heartbeat stops the feeding at once', async (t) => {
  const k = await keeper(t, { VIGIL_HEARTBEAT_STALE_S: '1000' });
  await writeFile(k.hb, 'ok\n');
  await sleep(500);
  t.ok((await k.fed()) > 0, 'fed');
  await writeFile(k.hb, 'reset\n');
  await sleep(500);
  const before = await k.fed();
  await sleep(700);
  t.equal(await k.fed(), before, 'no longer fed');
  t.match(k.stderr(), /the agent asked for a reset/);
});

t.test('watchdog keeper: "stopped" (a planned agent stop) disarms it until the heartbeat changes again', async (t) => {
  const k = await keeper(t, {});
  await writeFile(k.hb, 'ok 1\n');
  await sleep(500);
  await writeFile(k.hb, 'stopped\n');
  t.ok(await eventually(() => /the agent stopped as planned/.test(k.stderr()), 3000), 'says it disarms');
  // STALE_S=1: an armed keeper would give up 2-3 s after the last change
  const disarmed = await k.fed();
  await sleep(3500);
  t.ok((await k.fed()) > disarmed, 'still fed long after the last change');
  t.notMatch(k.stderr(), /no longer feeding/);
  // The agent runs again: its next beat re-arms the keeper, and going stale counts again
  const now = new Date();
  await writeFile(k.hb, 'ok 2\n');
  await utimes(k.hb, now, new Date(now.getTime() + 5000));
  t.ok(await eventually(() => /no agent heartbeat for \d+s: no longer feeding/.test(k.stderr()), 6000), 'stale again once re-armed');
  const afterStale = await k.fed();
  await sleep(800);
  t.equal(await k.fed(), afterStale, 'no longer fed');
});

t.test('watchdog keeper: a trial boot without a heartbeat in time stops the feeding', async (t) => {
  // vigil.tryboot=1 plays the Pi firmware's tryboot flag; a grace of 0 s has already passed
  const k = await keeper(t, { VIGIL_TRIAL_GRACE_S: '0' }, 'root=/dev/vda5 vigil.tryboot=1');
  await sleep(800);
  const before = await k.fed();
  await sleep(600);
  t.equal(await k.fed(), before, 'not fed');
  t.match(k.stderr(), /trial boot and no agent heartbeat within 0s/);
});

t.test('watchdog keeper: in a trial boot, a heartbeat once seen satisfies the grace, "stopped" or not', async (t) => {
  // The grace ends 2 s from now on the keeper's clock (/proc/uptime)
  const uptime = Math.floor(Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]));
  // Staleness far away: only the trial rule is under test
  const k = await keeper(t, { VIGIL_TRIAL_GRACE_S: String(uptime + 2), VIGIL_HEARTBEAT_STALE_S: '1000' }, 'root=/dev/vda5 vigil.tryboot=1');
  await writeFile(k.hb, 'ok 1\n');
  await sleep(500);
  await writeFile(k.hb, 'stopped\n');
  await sleep(4000);
  const before = await k.fed();
  await sleep(600);
  t.ok((await k.fed()) > before, 'still fed after the grace');
  t.notMatch(k.stderr(), /no longer feeding/);
});

t.test('watchdog keeper: no watchdog device, the keeper stays up and says so', async (t) => {
  const k = await keeper(t, { VIGIL_WATCHDOG_DEVICE: '/nonexistent/watchdog' });
  await sleep(500);
  t.notOk(k.exited(), 'still running (init would restart an exiting keeper in a loop)');
  t.match(k.stderr(), /no \/nonexistent\/watchdog/);
});

t.test('lib.sh: vigil.* kernel parameters win over /etc/default/vigil', async (t) => {
  const dir = await tmpDir(t, 'vigil-lib-');
  await writeFile(join(dir, 'defaults'), 'VIGIL_DATA_DEVICE=/dev/mmcblk0p7\n');
  const probe = async (cmdline: string) => {
    await writeFile(join(dir, 'cmdline'), `${cmdline}\n`);
    const r = await run('sh', ['-c', `. "${LIB}"; vigil_data_device; vigil_param vigil.slot; vigil_tryboot && echo trial || echo normal`], {
      VIGIL_DEFAULTS_FILE: join(dir, 'defaults'),
      VIGIL_CMDLINE_FILE: join(dir, 'cmdline'),
    });
    return r.stdout.split('\n');
  };
  t.same(await probe('console=ttyAMA0 root=/dev/vda5 vigil.data=/dev/vda7 vigil.slot=a'), ['/dev/vda7', 'a', 'normal', '']);
  t.same(await probe('root=/dev/mmcblk0p6 vigil.slot=b vigil.tryboot=1'), ['/dev/mmcblk0p7', 'b', 'trial', '']);
});

t.test('make flash refuses what is not an SD card', async (t) => {
  const flash = (device: string, env: NodeJS.ProcessEnv = {}) => run('sh', ['scripts/flash.sh', device], { DRY_RUN: '1', ...env });
  const cases: [string, string, RegExp][] = [
    ['no DEVICE', '', /usage: make flash DEVICE=/],
    ['a missing device', '/dev/vigil-no-such-disk', /does not exist/],
    ['a regular file', join(ROOT, 'Makefile'), /not a block device/],
    ['a character device', '/dev/null', /not a block device/],
  ];
  for (const [what, device, expected] of cases) {
    const r = await flash(device);
    t.not(r.code, 0, `${what}: refused`);
    t.match(r.stderr, expected, `${what}: says why`);
  }
  // The disk that holds / (when / is on a block device here)
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const rootDev = mountinfo.split('\n').map((l) => l.split(' ')).find((f) => f[4] === '/')?.[2];
  const sysPath = rootDev ? await run('readlink', ['-f', `/sys/dev/block/${rootDev}`]) : null;
  if (!sysPath || sysPath.code !== 0) {
    t.pass('system disk refusal', { skip: 'the root filesystem here is not on a block device' });
  } else {
    let p = sysPath.stdout.trim();
    if (await stat(join(p, 'partition')).catch(() => null)) p = join(p, '..');
    const disk = `/dev/${(await run('basename', [p])).stdout.trim()}`;
    const r = await flash(disk, { FORCE: '1' });
    t.not(r.code, 0, `${disk} (holds /): refused, even with FORCE=1`);
    t.match(r.stderr, /system disk|is mounted/);
  }
});

t.test('make flash writes a loop device, and refuses it while mounted', { skip: isRoot ? false : 'needs root (loop devices)' }, async (t) => {
  const dir = await tmpDir(t, 'vigil-flash-');
  const card = join(dir, 'card');
  await run('truncate', ['-s', '64M', card]);
  const attach = await run('losetup', ['--find', '--show', card]);
  if (attach.code !== 0) {
    t.pass('loop device', { skip: `losetup: ${attach.stderr.trim()}` });
    return;
  }
  const dev = attach.stdout.trim();
  t.teardown(() => run('losetup', ['-d', dev]));
  // The "image": an ext4 filesystem with a known file, so the written card can be mounted
  const image = join(dir, 'sdcard.img');
  await mkdir(join(dir, 'content'));
  await writeFile(join(dir, 'content', 'hello'), 'vigil\n');
  const mk = await run('mkfs.ext4', ['-q', '-F', '-L', 'card', '-d', join(dir, 'content'), image, '16M']);
  t.equal(mk.code, 0, mk.stderr);

  const flash = (env: NodeJS.ProcessEnv) => run('sh', ['scripts/flash.sh', dev], { IMAGE: image, ...env });
  const notRemovable = await flash({});
  t.not(notRemovable.code, 0, 'a loop device is not removable: refused without FORCE');
  t.match(notRemovable.stderr, /not a removable disk/);

  const dd = await flash({ FORCE: '1' }); // no .bmap yet: dd
  t.equal(dd.code, 0, `FORCE=1 writes it\n${dd.stderr}`);
  const written = await run('cmp', ['-n', String((await stat(image)).size), image, dev]);
  t.equal(written.code, 0, 'the device holds the image');

  const bmap = await run('bmaptool', ['create', '-o', `${image}.bmap`, image]);
  if (bmap.code === 0) {
    await run('dd', ['if=/dev/zero', `of=${dev}`, 'bs=1M', 'count=16', 'conv=fsync']);
    const viaBmap = await flash({ FORCE: '1' });
    t.equal(viaBmap.code, 0, `with a .bmap, bmaptool writes it\n${viaBmap.stderr}`);
    t.equal((await run('cmp', ['-n', String((await stat(image)).size), image, dev])).code, 0, 'the device holds the image');
  }

  const mnt = join(dir, 'mnt');
  await mkdir(mnt);
  const mounted = await run('mount', ['-o', 'ro', dev, mnt]);
  if (mounted.code !== 0) {
    t.pass('mounted refusal', { skip: `cannot mount here: ${mounted.stderr.trim()}` });
    return;
  }
  t.teardown(() => run('umount', [mnt]));
  t.equal(await readFile(join(mnt, 'hello'), 'utf8'), 'vigil\n', 'the written card mounts');
  const busy = await flash({ FORCE: '1', DRY_RUN: '1' });
  t.not(busy.code, 0, 'refused while mounted, even with FORCE=1');
  t.match(busy.stderr, /is mounted/);
});

t.test('make image refuses clearly without the agent executable', async (t) => {
  // A copy of the script in an empty tree: it looks for build/agent-bin beside itself
  const top = await tmpDir(t, 'vigil-image-');
  await mkdir(join(top, 'scripts'));
  await copyFile(join(ROOT, 'scripts/build-image.sh'), join(top, 'scripts/build-image.sh'));
  const r = await run('sh', [join(top, 'scripts/build-image.sh')], {}, top);
  t.not(r.code, 0, 'refused');
  t.match(r.stderr, /run 'make agent-bin' first/);
});

t.test('vigil-reboot: tryboot sets the firmware flag through vcmailbox, then reboots; refuses loudly', async (t) => {
  const dir = await tmpDir(t, 'vigil-reboot-');
  const calls = join(dir, 'calls');
  // Stand-ins that log their arguments: the mailbox answers like the real one (word 1 = response code)
  const fake = async (name: string, body: string): Promise<string> => {
    const p = join(dir, name);
    await writeFile(p, `#!/bin/sh\necho "${name} $*" >>"${calls}"\n${body}\n`, { mode: 0o755 });
    return p;
  };
  const ok = await fake('vcmailbox-ok', 'echo "0x0000001c 0x80000000 0x00038064 0x00000004 0x80000004 0x00000001 0x00000000"');
  const refused = await fake('vcmailbox-refused', 'echo "0x0000001c 0x80000001 0x00038064 0x00000004 0x00000000 0x00000001 0x00000000"');
  const broken = await fake('vcmailbox-broken', 'echo "cannot open /dev/vcio" >&2; exit 1');
  const reboot = await fake('reboot', 'exit 0');
  const SCRIPT = join(OVERLAY, 'usr/sbin/vigil-reboot');
  const go = async (mailbox: string, args: string[]): Promise<{ r: Result; calls: string }> => {
    await writeFile(calls, '');
    const r = await run('sh', [SCRIPT, ...args], { VIGIL_LIB: LIB, VIGIL_VCMAILBOX: mailbox, VIGIL_REBOOT: reboot });
    return { r, calls: await readFile(calls, 'utf8') };
  };

  const trial = await go(ok, ['tryboot']);
  t.equal(trial.r.code, 0, `tryboot: ${trial.r.stderr}`);
  t.equal(trial.calls, 'vcmailbox-ok 0x00038064 4 0 1\nreboot \n', 'RPI_FIRMWARE_SET_REBOOT_FLAGS = 1, then a plain (BusyBox) reboot');
  const plain = await go(ok, []);
  t.equal(plain.r.code, 0);
  t.equal(plain.calls, 'reboot \n', 'no argument: an ordinary reboot, the mailbox untouched');

  for (const [what, mailbox] of [
    ['the firmware refuses', refused],
    ['vcmailbox fails', broken],
    ['there is no vcmailbox', join(dir, 'missing')],
  ] as const) {
    const r = await go(mailbox, ['tryboot']);
    t.not(r.r.code, 0, `${what}: non-zero`);
    t.match(r.r.stderr, /not rebooting/, `${what}: says so`);
    t.notMatch(r.calls, /^reboot/m, `${what}: no reboot (the caller must not expect a trial)`);
  }
  const bad = await go(ok, ['0 tryboot']);
  t.not(bad.r.code, 0, 'an unknown argument is refused');
  t.equal(bad.calls, '', 'and nothing is called');
});
