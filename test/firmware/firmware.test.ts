// Firmware checks that run without Buildroot (docs/firmware.md): the external tree's Kconfig
// with kconfiglib, shellcheck on every script, the real genimage configs on dummy inputs and
// the card they make, and the rules the board files follow. Each check fails on its own.
import t from 'tap';
import { execFile } from 'node:child_process';
import { cp, open, readFile, readdir, stat, writeFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseConfig } from '../../agent/src/config.js';
import { tmpDir } from '../helpers/tmp.js';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BOARD = join(ROOT, 'board/rpi4');
const OVERLAY = join(ROOT, 'board/common/rootfs-overlay');
const PKG = join(ROOT, 'buildroot/package/vigil-agent');
const DEFCONFIG = join(ROOT, 'buildroot/configs/vigil_rpi4_64_defconfig');
const SECTORS_4MIB = 8192;
const MIB = 2048; // sectors

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const r = await exec(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

const firmwareCheck = (...args: string[]) => run('sh', ['scripts/firmware-check.sh', ...args]);

interface Partition {
  node: string;
  start: number;
  size: number;
  type: string;
  bootable?: boolean;
}

async function partitions(image: string): Promise<Map<number, Partition>> {
  const r = await run('sfdisk', ['--json', image]);
  if (r.code !== 0) throw new Error(`sfdisk --json ${image}: ${r.stderr}`);
  const table = (JSON.parse(r.stdout) as { partitiontable: { partitions: Partition[] } }).partitiontable;
  return new Map(table.partitions.map((p) => [Number(/(\d+)$/.exec(p.node)?.[1]), p]));
}

/** A file inside a FAT filesystem at a byte offset of an image (mtools, no mount). */
async function fatFile(image: string, offsetBytes: number, name: string): Promise<string> {
  const r = await run('mtype', ['-i', `${image}@@${offsetBytes}`, `::${name}`]);
  if (r.code !== 0) throw new Error(`mtype ${name}: ${r.stderr}`);
  return r.stdout;
}

const defconfigLines = async () => (await readFile(DEFCONFIG, 'utf8')).split('\n').filter((l) => l !== '');

t.test('the firmware tools are installed (firmware-check.sh deps)', async (t) => {
  const r = await firmwareCheck('deps');
  t.equal(r.code, 0, r.stderr);
});

t.test('kconfig: the external tree parses, and the defconfig enables the agent with ffmpeg', async (t) => {
  const r = await firmwareCheck('kconfig');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /BR2_PACKAGE_VIGIL_AGENT\b/);
});

t.test('kconfig: a broken copy of the tree is rejected', async (t) => {
  const breakages: [string, (s: string) => string, RegExp][] = [
    ['a syntax error', (s) => s.replace('\tselect BR2_PACKAGE_FFMPEG # runtime: every capture', '\tselect\n'), /parse error|couldn't parse/],
    ['a misspelt dependency', (s) => s.replace('depends on BR2_TOOLCHAIN_USES_GLIBC', 'depends on BR2_TOOLCHAIN_USES_GLIBCC'), /undefined symbol BR2_TOOLCHAIN_USES_GLIBCC/],
    ['a runtime dependency dropped', (s) => s.replace('\tselect BR2_PACKAGE_FFMPEG_SWSCALE # runtime: the scale filter\n', ''), /BR2_PACKAGE_FFMPEG_SWSCALE is not/],
  ];
  for (const [what, edit, expected] of breakages) {
    const dir = await tmpDir(t, 'vigil-kconfig-');
    await cp(join(ROOT, 'buildroot'), dir, { recursive: true });
    const file = join(dir, 'package/vigil-agent/Config.in');
    const good = await readFile(file, 'utf8');
    const bad = edit(good);
    t.not(bad, good, `${what}: the edit applies`);
    await writeFile(file, bad);
    const r = await firmwareCheck('kconfig', dir);
    t.not(r.code, 0, `${what}: rejected`);
    t.match(r.stderr, expected, `${what}: named in the error`);
  }
});

t.test('shellcheck: every shell script under buildroot/, board/ and scripts/ that git knows', async (t) => {
  const list = await firmwareCheck('shell-scripts');
  t.equal(list.code, 0, list.stderr);
  const files = list.stdout.split('\n').filter(Boolean);
  // The finder must not miss a script: these are known to exist
  for (const known of [
    'board/rpi4/post-build.sh',
    'board/rpi4/post-image.sh',
    'board/common/rootfs-overlay/etc/init.d/S03vigil-data',
    'board/common/rootfs-overlay/etc/init.d/S04vigil-clock',
    'board/common/rootfs-overlay/usr/sbin/vigil-watchdog',
    'board/common/rootfs-overlay/usr/sbin/vigil-grow-data',
    'board/common/rootfs-overlay/usr/lib/vigil/lib.sh',
    'buildroot/package/vigil-agent/S99vigil-agent',
    'buildroot/package/vigil-agent/vigil-agent-run',
    'scripts/firmware-check.sh',
    'scripts/build-image.sh',
    'scripts/flash.sh',
    'scripts/test.sh',
  ]) {
    t.ok(files.includes(known), `${known} is checked`);
  }
  for (const f of files) {
    const r = await run('shellcheck', ['--external-sources', f]);
    t.equal(r.code, 0, `shellcheck ${f}${r.stdout ? `\n${r.stdout}` : ''}`);
  }
});

t.test('genimage: the real configs make the tryboot A/B card', async (t) => {
  const out = await tmpDir(t, 'vigil-genimage-');
  const r = await firmwareCheck('genimage', out);
  if (!t.equal(r.code, 0, `firmware-check.sh genimage\n${r.stderr}`)) return;
  const image = join(out, 'sdcard.img');
  const parts = await partitions(image);

  t.test('partition table: order, types, sizes, 4 MiB alignment', async (t) => {
    t.same([...parts.keys()], [1, 2, 3, 4, 5, 6, 7]);
    const want: [number, string[], number | null][] = [
      [1, ['c'], 16 * MIB],
      [2, ['c'], 128 * MIB],
      [3, ['c'], 128 * MIB],
      [4, ['5', 'f', '85'], null],
      [5, ['83'], 512 * MIB],
      [6, ['83'], 512 * MIB],
      [7, ['83'], 256 * MIB],
    ];
    let previousEnd = 0;
    for (const [n, types, size] of want) {
      const p = parts.get(n);
      if (!t.ok(p, `p${n} exists`) || !p) continue;
      t.ok(types.includes(p.type), `p${n} type ${p.type} is one of ${types.join('/')}`);
      t.equal(p.start % SECTORS_4MIB, 0, `p${n} starts on a 4 MiB boundary (sector ${p.start})`);
      if (size !== null) {
        t.equal(p.size, size, `p${n} is ${size / MIB} MiB`);
        t.ok(p.start >= previousEnd, `p${n} comes after the previous partition`);
        previousEnd = p.start + p.size;
      }
    }
    t.equal(parts.get(1)?.bootable, true, 'p1 (autoboot) is marked bootable');
    const ext = parts.get(4);
    const data = parts.get(7);
    t.ok(ext && data && data.start + data.size <= ext.start + ext.size, 'p5-p7 lie inside the extended partition');
    t.equal((await stat(image)).size, previousEnd * 512, 'the image ends with the data partition');
  });

  t.test('p1 holds autoboot.txt: slot A committed, and a tryboot reboot starts slot A too until an update arms B', async (t) => {
    const offset = (parts.get(1)?.start ?? 0) * 512;
    const text = await fatFile(image, offset, 'autoboot.txt');
    t.equal(text, await readFile(join(BOARD, 'autoboot.txt'), 'utf8'));
    t.ok(Buffer.byteLength(text) <= 512, 'autoboot.txt fits the firmware limit of 512 bytes');
    // [tryboot] names the committed slot: a stray tryboot reboot must never start the empty slot B
    // (the tryboot backend arms B only after RAUC wrote it)
    t.match(text, /^\[all\]\ntryboot_a_b=1\nboot_partition=2\n\[tryboot\]\nboot_partition=2\n$/);
    const label = await run('mlabel', ['-s', '-i', `${image}@@${offset}`, '::']);
    t.match(label.stdout, /AUTOBOOT/);
    const fat = await run('file', ['-s', join(out, 'autoboot.vfat')]);
    t.match(fat.stdout, /FAT \(16 bit\)/, 'p1 is FAT16');
  });

  t.test('boot slots: A mounts rootfs p5, B mounts rootfs p6; same firmware and config', async (t) => {
    const a = await fatFile(image, (parts.get(2)?.start ?? 0) * 512, 'cmdline.txt');
    t.match(a, /(^| )root=\/dev\/mmcblk0p5( |$)/);
    t.match(a, /(^| )vigil\.slot=a( |$)/);
    t.match(a, /(^| )rauc\.slot=a( |$)/, 'RAUC finds the booted slot by rauc.slot= (its bootname)');
    const b = await fatFile(join(out, 'bootB.vfat'), 0, 'cmdline.txt');
    t.match(b, /(^| )root=\/dev\/mmcblk0p6( |$)/);
    t.match(b, /(^| )vigil\.slot=b( |$)/);
    t.match(b, /(^| )rauc\.slot=b( |$)/);
    for (const [slot, img, off] of [['A', image, (parts.get(2)?.start ?? 0) * 512], ['B', join(out, 'bootB.vfat'), 0]] as const) {
      t.equal(await fatFile(img, off, 'config.txt'), await readFile(join(BOARD, 'config.txt'), 'utf8'), `slot ${slot} has config.txt`);
      for (const f of ['start4.elf', 'fixup4.dat', 'Image', 'bcm2711-rpi-4-b.dtb', 'overlays/disable-bt.dtbo']) {
        const r = await run('mdir', ['-b', '-i', `${img}@@${off}`, `::${f}`]);
        t.equal(r.code, 0, `slot ${slot} has ${f}`);
      }
    }
  });

  t.test('p5 holds the squashfs root; p7 a clean ext4 labelled "data"', async (t) => {
    const p5 = (parts.get(5)?.start ?? 0) * 512;
    const fd = await open(image);
    const magic = Buffer.alloc(4);
    await fd.read(magic, 0, 4, p5);
    await fd.close();
    t.equal(magic.toString('latin1'), 'hsqs', 'squashfs magic at the start of p5');
    const p7 = (parts.get(7)?.start ?? 0) * 512;
    const fsck = await run('e2fsck', ['-fn', `${image}?offset=${p7}`]);
    t.equal(fsck.code, 0, `e2fsck of p7\n${fsck.stdout}${fsck.stderr}`);
    const label = await run('dumpe2fs', ['-h', `${image}?offset=${p7}`]);
    t.match(label.stdout, /Filesystem volume name:\s+data\n/);
  });

  t.test('vigil-grow-data grows p7 to the end of a bigger card, once', async (t) => {
    const dir = await tmpDir(t, 'vigil-grow-');
    const card = join(dir, 'card.img');
    const copy = await run('cp', ['--sparse=always', image, card]); // 1.5 GiB, nearly all holes
    t.equal(copy.code, 0, copy.stderr);
    await truncate(card, 4 * 1024 ** 3);
    const grow = join(OVERLAY, 'usr/sbin/vigil-grow-data');
    const first = await run('sh', [grow, card, '7']);
    t.equal(first.code, 0, first.stderr);
    t.match(first.stdout, /^grown \d+ \d+\n$/);
    const grown = await partitions(card);
    const end = 4 * 1024 ** 3 / 512;
    t.equal((grown.get(7)?.start ?? 0) + (grown.get(7)?.size ?? 0), end, 'p7 ends at the end of the card');
    t.equal((grown.get(4)?.start ?? 0) + (grown.get(4)?.size ?? 0), end, 'so does the extended partition');
    t.equal(grown.get(7)?.start, parts.get(7)?.start, 'p7 did not move');
    const shape = (m: Map<number, Partition>) => [1, 2, 3, 5, 6].map((n) => [m.get(n)?.start, m.get(n)?.size, m.get(n)?.type]);
    t.same(shape(grown), shape(parts), 'the other partitions are untouched');
    const fsck = await run('e2fsck', ['-fn', `${card}?offset=${(grown.get(7)?.start ?? 0) * 512}`]);
    t.equal(fsck.code, 0, 'the data filesystem is intact');
    const again = await run('sh', [grow, card, '7']);
    t.match(again.stdout, /^unchanged/, 'a second run changes nothing');
    const notLast = await run('sh', [grow, card, '6']);
    t.not(notLast.code, 0, 'a partition that is not the last one is refused');
  });
});

t.test('defconfig: read-only squashfs root, watchdog, ffmpeg, NTP, e2fsprogs; pinned', async (t) => {
  const lines = await defconfigLines();
  const has = (l: string) => t.ok(lines.includes(l), l);
  has('# BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW is not set');
  t.notOk(lines.some((l) => /^BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW=y/.test(l)), 'no remount-rw');
  has('BR2_TARGET_ROOTFS_SQUASHFS=y');
  has('BR2_TARGET_ROOTFS_SQUASHFS4_ZSTD=y');
  t.notOk(lines.some((l) => /^BR2_TARGET_ROOTFS_EXT2=y/.test(l)), 'no ext2/4 root filesystem');
  has('BR2_PACKAGE_VIGIL_AGENT=y'); // selects ffmpeg, its CLI and swscale: the kconfig test evaluates that
  has('BR2_PACKAGE_CHRONY=y');
  has('BR2_PACKAGE_E2FSPROGS=y');
  has('BR2_PACKAGE_E2FSPROGS_RESIZE2FS=y');
  has('BR2_PACKAGE_UTIL_LINUX_BINARIES=y'); // sfdisk, for vigil-grow-data
  has('BR2_PACKAGE_UTIL_LINUX_PARTX=y'); // partx, to tell the kernel
  // openssl (rtsps:// in ffmpeg): rauc selects it, so savedefconfig leaves the line out
  t.ok(lines.includes('BR2_PACKAGE_OPENSSL=y') || lines.includes('BR2_PACKAGE_RAUC=y'), 'openssl is in the image');
  t.ok(lines.some((l) => /^BR2_STRIP_EXCLUDE_FILES=".*\bvigil-agent\b.*"$/.test(l)), 'strip leaves the single executable alone');
  const agentConfig = await readFile(join(PKG, 'Config.in'), 'utf8');
  t.match(agentConfig, /select BR2_PACKAGE_FFMPEG #/, 'the agent package selects ffmpeg');

  // The hardware watchdog: kernel driver, firmware switch, the keeper under init
  const fragmentLine = lines.find((l) => l.startsWith('BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES='));
  t.equal(fragmentLine, 'BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES="$(BR2_EXTERNAL_VIGIL_PATH)/../board/rpi4/linux.fragment"');
  const fragment = await readFile(join(BOARD, 'linux.fragment'), 'utf8');
  for (const opt of ['CONFIG_BCM2835_WDT=y', 'CONFIG_WATCHDOG_NOWAYOUT=y', 'CONFIG_SQUASHFS=y', 'CONFIG_SQUASHFS_ZSTD=y', 'CONFIG_EXT4_FS=y']) {
    t.match(fragment, new RegExp(`^${opt}$`, 'm'), `kernel: ${opt}`);
  }
  // RAUC's verity bundles: a loop device and dm-verity, built in (no udev loads modules)
  for (const opt of ['CONFIG_BLK_DEV_LOOP=y', 'CONFIG_MD=y', 'CONFIG_BLK_DEV_DM=y', 'CONFIG_DM_VERITY=y']) {
    t.match(fragment, new RegExp(`^${opt}$`, 'm'), `kernel: ${opt}`);
  }

  // OTA: RAUC (no D-Bus: the agent drives the CLI, which then works alone), the tryboot flag's
  // mailbox tool, and the post-build script that installs system.conf and the keyring
  has('BR2_PACKAGE_RAUC=y');
  t.notOk(lines.some((l) => /^BR2_PACKAGE_RAUC_DBUS=y/.test(l)), 'rauc without D-Bus: no daemon to run on the Pi');
  has('BR2_PACKAGE_VIGIL_VCMAILBOX=y');
  const postBuild = await readFile(join(BOARD, 'post-build.sh'), 'utf8');
  t.match(postBuild, /board\/common\/rauc\/system\.conf" "\$TARGET_DIR\/etc\/rauc\/system\.conf"/, 'post-build installs system.conf');
  t.match(postBuild, /"\$TARGET_DIR\/etc\/rauc\/keyring\.pem"/, 'and the keyring');
  t.match(postBuild, /VIGIL_KEYRING/, 'a release names its keyring with VIGIL_KEYRING');
  t.match(await readFile(join(BOARD, 'config.txt'), 'utf8'), /^dtparam=watchdog=on$/m);

  // Pinned: the kernel by commit, hashes enforced, Buildroot by tag and commit
  t.match(lines.join('\n'), /BR2_LINUX_KERNEL_CUSTOM_TARBALL_LOCATION=".*linux-[0-9a-f]{40}\.tar\.gz"/);
  has('BR2_DOWNLOAD_FORCE_CHECK_HASHES=y');
  const build = await readFile(join(ROOT, 'scripts/build-image.sh'), 'utf8');
  t.match(build, /^BR_VERSION=2026\.02\.3$/m);
  t.match(build, /^BR_COMMIT=[0-9a-f]{40}$/m);

  // savedefconfig's shape: one symbol per line, no duplicates, only "is not set" comments
  const symbols = lines.map((l) => /^(?:# )?(BR2_[A-Za-z0-9_]+)[= ]/.exec(l)?.[1]);
  t.ok(symbols.every(Boolean), 'every line sets or unsets one BR2_ symbol');
  t.equal(new Set(symbols).size, symbols.length, 'no symbol twice');
  t.ok(lines.filter((l) => l.startsWith('#')).every((l) => / is not set$/.test(l)), 'no other comments');

  // Every board path it names exists
  for (const m of lines.join('\n').matchAll(/\$\(BR2_EXTERNAL_VIGIL_PATH\)\/\.\.\/([^" ]+)/g)) {
    const path = m[1] ?? '';
    t.ok(await stat(join(ROOT, path)).catch(() => null), `${path} exists`);
  }
});

t.test('config.txt: every setting commented; cmdline.txt: one line, every parameter explained', async (t) => {
  const config = (await readFile(join(BOARD, 'config.txt'), 'utf8')).split('\n');
  config.forEach((line, i) => {
    if (line === '' || line.startsWith('#')) return;
    t.ok((config[i - 1] ?? '').startsWith('#'), `config.txt:${i + 1} "${line}" has a comment above it`);
    t.notMatch(line, /#/, `config.txt:${i + 1} has no trailing comment (the firmware would read it as the value)`);
  });
  const explained = config.filter((l) => l.startsWith('#')).join('\n');
  const a = await readFile(join(BOARD, 'cmdline-a.txt'), 'utf8');
  const b = await readFile(join(BOARD, 'cmdline-b.txt'), 'utf8');
  for (const [name, text] of [['cmdline-a.txt', a], ['cmdline-b.txt', b]] as const) {
    t.match(text, /^[^\n#]+\n$/, `${name} is one line, no comment (the kernel would get it)`);
    for (const param of text.trim().split(/\s+/)) {
      const generic = param.replace('mmcblk0p6', 'mmcblk0p5').replace('vigil.slot=b', 'vigil.slot=a').replace('rauc.slot=b', 'rauc.slot=a');
      t.ok(explained.includes(`#   ${generic} `), `${name}: ${param} is explained in config.txt`);
    }
  }
  t.equal(
    b,
    a.replace('root=/dev/mmcblk0p5', 'root=/dev/mmcblk0p6').replace('vigil.slot=a', 'vigil.slot=b').replace('rauc.slot=a', 'rauc.slot=b'),
    'the slots differ only in root and slot name',
  );
});

t.test('rootfs overlay: the runtime policy the image and the QEMU test share', async (t) => {
  const inittab = await readFile(join(OVERLAY, 'etc/inittab'), 'utf8');
  t.match(inittab, /^::respawn:\/usr\/libexec\/vigil-agent-run$/m, 'init respawns the agent');
  t.match(inittab, /^::respawn:\/usr\/sbin\/vigil-watchdog$/m, 'init respawns the watchdog keeper');
  const inittabCommands = inittab.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  t.notOk(inittabCommands.some((l) => /remount/.test(l)), 'the root is never remounted read-write');
  t.match(inittab, /^::shutdown:\/etc\/init\.d\/rcK$/m);
  const fstab = await readFile(join(OVERLAY, 'etc/fstab'), 'utf8');
  for (const dir of ['/tmp', '/run', '/var/lib', '/dev/shm']) {
    t.match(fstab, new RegExp(`^tmpfs\\s+${dir}\\s+tmpfs\\s`, 'm'), `${dir} is a tmpfs`);
  }
  t.match(fstab, /^\/dev\/root\s+\/\s+squashfs\s+ro,/m);
  for (const f of await readdir(join(OVERLAY, 'etc/init.d'))) {
    t.ok(((await stat(join(OVERLAY, 'etc/init.d', f))).mode & 0o111) !== 0, `etc/init.d/${f} is executable`);
  }
  for (const f of ['usr/sbin/vigil-watchdog', 'usr/sbin/vigil-grow-data']) {
    t.ok(((await stat(join(OVERLAY, f))).mode & 0o111) !== 0, `${f} is executable`);
  }
  const dataScript = await readFile(join(OVERLAY, 'etc/init.d/S03vigil-data'), 'utf8');
  t.match(dataScript, /e2fsck -p /, '/data is checked at boot');
  t.match(dataScript, /mkfs\.ext4 /, '/data is re-created when it cannot be mounted');
  const env = await readFile(join(PKG, 'vigil-agent.default'), 'utf8');
  t.match(env, /^VIGIL_CONFIG=\/data\/vigil\/agent\.json$/m);
  t.match(env, /^VIGIL_SQLITE_BINDING=\/usr\/lib\/vigil-agent\/better_sqlite3\.node$/m);
  const defaults = JSON.parse(await readFile(join(OVERLAY, 'etc/vigil/agent.default.json'), 'utf8')) as unknown;
  t.doesNotThrow(() => parseConfig(defaults), 'the default agent.json is a valid agent config');
});
