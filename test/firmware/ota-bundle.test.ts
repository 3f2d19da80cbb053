// OTA bundles and the tryboot backend (docs/firmware.md, "OTA bundles"), with Debian's real rauc:
// scripts/ota-keys.sh and scripts/ota-bundle.sh on small test images, then the signature and
// payload checks a device makes; the custom bootloader backend against a fake autoboot.txt.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile, copyFile, open, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tmpDir } from '../helpers/tmp.js';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OVERLAY = join(ROOT, 'board/common/rootfs-overlay');
const BACKEND = join(OVERLAY, 'usr/lib/vigil/rauc-tryboot-backend');
const LIB = join(OVERLAY, 'usr/lib/vigil/lib.sh');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const r = await exec(cmd, args, { cwd: ROOT, env: { ...process.env, ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/** rauc on PATH, installing it (as root) the way the scripts do; the reason otherwise. */
async function raucMissing(): Promise<string | false> {
  if ((await run('sh', ['-c', 'command -v rauc'])).code === 0) return false;
  const r = await run('sh', ['-c', '. scripts/lib/debian-packages.sh && install_missing ota-bundle-test rauc']);
  return r.code === 0 ? false : `rauc cannot be installed: ${r.stderr.trim()}`;
}

interface Keys {
  VIGIL_SIGNING_KEY: string;
  VIGIL_SIGNING_CERT: string;
  VIGIL_KEYRING: string;
}

/** The three key paths ota-keys.sh prints, NAME=path a line. */
function keyPaths(stdout: string): Keys {
  const lines = new Map(stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const get = (name: keyof Keys) => lines.get(name) ?? '';
  return { VIGIL_SIGNING_KEY: get('VIGIL_SIGNING_KEY'), VIGIL_SIGNING_CERT: get('VIGIL_SIGNING_CERT'), VIGIL_KEYRING: get('VIGIL_KEYRING') };
}

async function flipByte(file: string, offset: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b.writeUInt8(b.readUInt8(0) ^ 0xff, 0);
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

t.test('signed bundles', async (t) => {
  const missing = await raucMissing();
  if (missing) {
    t.pass('signed bundles', { skip: missing });
    return;
  }
  const dir = await tmpDir(t, 'vigil-ota-');
  // Small slot images: a FAT boot image with a cmdline.txt, a squashfs with incompressible data
  // (a verity bundle's payload must be over 4 KiB)
  const boot = join(dir, 'boot.vfat');
  t.equal((await run('mkfs.vfat', ['-C', boot, '1024'])).code, 0, 'mkfs.vfat');
  await writeFile(join(dir, 'cmdline.txt'), 'root=/dev/mmcblk0p5 vigil.slot=a\n');
  t.equal((await run('mcopy', ['-i', boot, join(dir, 'cmdline.txt'), '::cmdline.txt'])).code, 0, 'mcopy');
  // Slot B's boot image differs in its command line, as the real ones do
  const bootB = join(dir, 'bootB.vfat');
  t.equal((await run('mkfs.vfat', ['-C', bootB, '1024'])).code, 0, 'mkfs.vfat B');
  await writeFile(join(dir, 'cmdline.txt'), 'root=/dev/mmcblk0p6 vigil.slot=b\n');
  t.equal((await run('mcopy', ['-i', bootB, join(dir, 'cmdline.txt'), '::cmdline.txt'])).code, 0, 'mcopy B');
  await mkdir(join(dir, 'root'));
  await writeFile(join(dir, 'root/data'), randomBytes(64 * 1024));
  const rootfs = join(dir, 'rootfs.squashfs');
  t.equal((await run('mksquashfs', [join(dir, 'root'), rootfs, '-quiet', '-noappend'])).code, 0, 'mksquashfs');

  const keysA = join(dir, 'keys-a');
  const made = await run('sh', ['scripts/ota-keys.sh', keysA]);
  t.equal(made.code, 0, `ota-keys.sh: ${made.stderr}`);
  const dev = keyPaths(made.stdout);
  const again = await run('sh', ['scripts/ota-keys.sh', keysA]);
  t.same(keyPaths(again.stdout), dev, 'a second run keeps the keys it made');
  t.equal(((await stat(dev.VIGIL_SIGNING_KEY)).mode & 0o077), 0, 'the private key is readable by its owner only');

  const keys = { ...dev };
  const bundle = join(dir, 'good.raucb');
  const built = await run('sh', ['scripts/ota-bundle.sh', boot, bootB, rootfs, bundle], { ...keys, VIGIL_VERSION: '1.2.3-test' });
  t.equal(built.code, 0, `ota-bundle.sh: ${built.stderr}`);
  t.equal(built.stdout.trim(), bundle, 'prints the bundle path');

  const info = await run('rauc', ['info', `--keyring=${dev.VIGIL_KEYRING}`, '--output-format=shell', bundle]);
  t.equal(info.code, 0, `rauc info verifies it with the dev CA: ${info.stderr}`);
  t.match(info.stdout, /RAUC_MF_COMPATIBLE='vigil-rpi4'/);
  t.match(info.stdout, /RAUC_MF_VERSION='1.2.3-test'/);
  t.match(info.stdout, /RAUC_MF_DESCRIPTION='Vigil firmware 1.2.3-test \(agent \d+\.\d+\.\d+[^']*\)'/);
  const withConf = await run('rauc', ['-c', 'board/common/rauc/system.conf', `--keyring=${dev.VIGIL_KEYRING}`, 'info', bundle]);
  t.equal(withConf.code, 0, `board/common/rauc/system.conf parses: ${withConf.stderr}`);
  t.match(withConf.stdout, /Bundle Format:\s+verity/, 'a verity bundle');
  const extracted = await run('rauc', ['extract', `--keyring=${dev.VIGIL_KEYRING}`, bundle, join(dir, 'x-good')]);
  t.equal(extracted.code, 0, `the payload checks out: ${extracted.stderr}`);
  t.same(await readFile(join(dir, 'x-good/rootfs.squashfs')), await readFile(rootfs), 'the rootfs image is carried as is');
  t.same(await readFile(join(dir, 'x-good/bootA.vfat')), await readFile(boot), 'slot A\'s boot image is carried');
  t.same(await readFile(join(dir, 'x-good/bootB.vfat')), await readFile(bootB), 'and slot B\'s');
  const manifest = await readFile(join(dir, 'x-good/manifest.raucm'), 'utf8');
  t.match(manifest, /\[hooks\]\nfilename=hook\nhooks=install-check;?\n/, 'the bundle carries its hook, run before anything is written');
  t.match(manifest, /\[image\.boot\][^[]*filename=bootA\.vfat\nhooks=install/, 'the boot image is written by the install hook');
  const usage = await run('sh', ['scripts/ota-bundle.sh', boot, rootfs]);
  t.not(usage.code, 0, 'two images named is a usage error (both boot images or none)');

  // The install hook, run as RAUC runs it, on files standing in for the boot partitions
  t.test('the install hook writes the target slot\'s own boot image and reads it back', async (t) => {
    const x = join(dir, 'x-good');
    const p2 = join(dir, 'fake-mmcblk0p2');
    const p3 = join(dir, 'fake-mmcblk0p3');
    for (const p of [p2, p3]) await writeFile(p, Buffer.alloc(2 * 1024 * 1024, 0xaa));
    const hook = (device: string, slotName: string, extra: NodeJS.ProcessEnv = {}) =>
      run('sh', [join(x, 'hook'), 'slot-install'], {
        RAUC_SLOT_DEVICE: device, RAUC_SLOT_NAME: slotName, RAUC_SLOT_CLASS: 'boot', RAUC_SLOT_BOOTNAME: '',
        RAUC_SLOT_PARENT: slotName.replace('boot', 'rootfs'), RAUC_IMAGE_NAME: join(x, 'bootA.vfat'), RAUC_BUNDLE_MOUNT_POINT: x, ...extra,
      });
    const b = await hook(p3, 'boot.1');
    t.equal(b.code, 0, `slot b: ${b.stderr}`);
    const sizeB = (await stat(bootB)).size;
    t.same((await readFile(p3)).subarray(0, sizeB), await readFile(bootB), 'boot.1 (p3) gets bootB.vfat, not the manifest\'s bootA.vfat');
    t.match(b.stderr, /written and read back: sha256 [0-9a-f]{64}/);
    const a = await hook(p2, 'boot.0');
    t.equal(a.code, 0, `slot a: ${a.stderr}`);
    t.same((await readFile(p2)).subarray(0, sizeB), await readFile(boot), 'boot.0 (p2) gets bootA.vfat');
    const fromBootname = await hook(p3, 'boot.x', { RAUC_SLOT_BOOTNAME: 'b' });
    t.equal(fromBootname.code, 0, `a bootname RAUC passes wins over the slot name: ${fromBootname.stderr}`);
    const crossed = await hook(p2, 'boot.1');
    t.not(crossed.code, 0, 'slot b\'s image is never written to p2');
    t.match(crossed.stderr, /not its boot partition/);
    const small = join(dir, 'small-p3');
    await writeFile(small, Buffer.alloc(4096));
    t.match((await hook(small, 'boot.1')).stderr, /larger than/, 'a device smaller than the image is refused');
    // A bundle whose sums do not match its image (built wrong): install-check refuses it before
    // anything is written (below); should slot-install run anyway, the read-back fails it
    const y = join(dir, 'y');
    await run('cp', ['-r', x, y]);
    await writeFile(join(y, 'SHA256SUMS'), `${'0'.repeat(64)}  bootA.vfat\n${'0'.repeat(64)}  bootB.vfat\n`);
    const wrong = await hook(p3, 'boot.1', { RAUC_BUNDLE_MOUNT_POINT: y });
    t.not(wrong.code, 0, 'a write that does not read back as SHA256SUMS says fails the install');
    t.match(wrong.stderr, /reads back as [0-9a-f]{64}, not 0{64}/);
    t.equal((await run('sh', [join(x, 'hook'), 'slot-post-install'])).code, 0, 'other hook calls do nothing');
    // install-check, before any slot is touched: the whole payload reads (dm-verity on a device)
    // and the boot images match their sums
    const check = await run('sh', [join(x, 'hook'), 'install-check'], { RAUC_BUNDLE_MOUNT_POINT: x });
    t.equal(check.code, 0, `install-check passes a good bundle: ${check.stderr}`);
    t.match(check.stderr, /reads back intact/);
    t.equal((await run('sh', [join(x, 'hook'), 'install-check'], { RAUC_BUNDLE_MOUNT_POINT: '' })).code, 0, 'and finds the bundle beside itself');
    const checkBad = await run('sh', [join(y, 'hook'), 'install-check'], { RAUC_BUNDLE_MOUNT_POINT: y });
    t.equal(checkBad.code, 10, 'install-check refuses boot images that do not match SHA256SUMS (10: RAUC reports the reason)');
    t.match(checkBad.stderr, /do not match its SHA256SUMS/);
  });

  // A flipped byte in the payload: the signature covers the verity root hash, and the payload
  // is checked block by block as it is read (install, extract), not by `rauc info`
  const payload = join(dir, 'payload-flipped.raucb');
  await copyFile(bundle, payload);
  await flipByte(payload, 100);
  const bad = await run('rauc', ['extract', `--keyring=${dev.VIGIL_KEYRING}`, payload, join(dir, 'x-bad')]);
  t.not(bad.code, 0, 'a flipped payload byte is rejected');
  t.match(bad.stderr, /corrupt|verif/i);

  // A flipped byte in the signature at the end
  const sig = join(dir, 'sig-flipped.raucb');
  await copyFile(bundle, sig);
  await flipByte(sig, (await stat(sig)).size - 300);
  t.not((await run('rauc', ['info', `--keyring=${dev.VIGIL_KEYRING}`, sig])).code, 0, 'a flipped signature byte is rejected');

  // Another signer (its own CA): the dev keyring refuses it
  const other = keyPaths((await run('sh', ['scripts/ota-keys.sh', join(dir, 'keys-b')])).stdout);
  const foreign = join(dir, 'foreign.raucb');
  const fb = await run('sh', ['scripts/ota-bundle.sh', boot, bootB, rootfs, foreign], { ...other, VIGIL_VERSION: '9' });
  t.equal(fb.code, 0, `ota-bundle.sh with other keys: ${fb.stderr}`);
  const refused = await run('rauc', ['info', `--keyring=${dev.VIGIL_KEYRING}`, foreign]);
  t.not(refused.code, 0, 'a bundle signed by another key is rejected by the dev keyring');

  const partial = await run('sh', ['scripts/ota-keys.sh'], { VIGIL_SIGNING_KEY: dev.VIGIL_SIGNING_KEY, VIGIL_SIGNING_CERT: '', VIGIL_KEYRING: '' });
  t.not(partial.code, 0, 'half the release keys named is an error');
  t.match(partial.stderr, /set all of/);
});

t.test('the tryboot backend on a fake autoboot.txt', async (t) => {
  const dir = await tmpDir(t, 'vigil-tryboot-');
  const autoboot = join(dir, 'autoboot.txt');
  const cmdline = join(dir, 'cmdline');
  const committedA = '[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n';
  const backend = (booted: 'a' | 'b', ...args: string[]) =>
    writeFile(cmdline, `root=/dev/mmcblk0p${booted === 'a' ? 5 : 6} rootwait vigil.slot=${booted}\n`).then(() =>
      run('sh', [BACKEND, ...args], { VIGIL_LIB: LIB, VIGIL_AUTOBOOT_DIR: dir, VIGIL_CMDLINE_FILE: cmdline }),
    );
  const file = () => readFile(autoboot, 'utf8');
  const form = (all: number, tryboot: number) => `[all]\ntryboot_a_b=1\nboot_partition=${all}\n[tryboot]\nboot_partition=${tryboot}\n`;

  await writeFile(autoboot, committedA);
  t.equal((await backend('a', 'get-current')).stdout, 'a\n', 'get-current from vigil.slot=');
  t.equal((await backend('b', 'get-current')).stdout, 'b\n');
  t.equal((await backend('a', 'get-primary')).stdout, 'a\n', 'get-primary: [all] boot_partition=2 is a');
  t.equal((await backend('a', 'get-state', 'a')).stdout, 'good\n');

  // RAUC's install: the target marked bad, written, then made primary
  t.equal((await backend('a', 'set-state', 'b', 'bad')).code, 0);
  t.equal(await file(), form(2, 2), 'marking b bad disarms the trial: a tryboot reboot starts a');
  t.equal((await backend('a', 'get-state', 'b')).stdout, 'bad\n');
  t.equal((await backend('a', 'set-primary', 'b')).code, 0);
  t.equal(await file(), form(2, 3), 'set-primary b: [tryboot] names partition 3, [all] still 2');
  t.equal((await backend('a', 'get-primary')).stdout, 'a\n', 'a stays committed until b proves itself');
  t.equal((await backend('a', 'get-state', 'b')).stdout, 'good\n');
  const early = await backend('a', 'set-state', 'b', 'good');
  t.not(early.code, 0, 'b cannot be committed from a boot of a');
  t.match(early.stderr, /only a trial boot/);
  t.equal(await file(), form(2, 3));

  // The trial boot of b (reboot '0 tryboot'): the agent marks it good
  t.equal((await backend('b', 'set-state', 'b', 'good')).code, 0);
  t.equal(await file(), form(3, 3), 'marking good in the trial commits b');
  t.equal((await backend('b', 'get-primary')).stdout, 'b\n');
  t.equal((await backend('b', 'set-state', 'b', 'good')).code, 0, 'marking the committed slot good again is a no-op');
  t.equal(await file(), form(3, 3));
  await t.resolveMatch(run('sh', ['-c', `ls ${dir}`]), { stdout: 'autoboot.txt\ncmdline\n' }, 'no autoboot.new left behind');

  // A failed trial: b armed from a, the trial boot of b marks itself bad
  await writeFile(autoboot, committedA);
  t.equal((await backend('b', 'set-state', 'b', 'bad')).code, 0);
  t.equal(await file(), form(2, 2), 'set-state bad leaves a committed, the trial disarmed');
  t.equal((await backend('b', 'get-primary')).stdout, 'a\n');

  const committedBad = await backend('a', 'set-state', 'a', 'bad');
  t.not(committedBad.code, 0, 'the committed slot cannot be marked bad');
  t.match(committedBad.stderr, /no slot to boot/);
  t.equal(await file(), form(2, 2));

  t.not((await backend('a', 'set-primary', 'c')).code, 0, 'an unknown slot is an error');
  t.not((await backend('a', 'set-state', 'b', 'maybe')).code, 0, 'an unknown state is an error');
  await writeFile(autoboot, '[all]\ntryboot_a_b=1\nboot_partition=7\n');
  t.not((await backend('a', 'get-primary')).code, 0, 'a partition that is no boot slot is an error');
  await writeFile(cmdline, 'root=/dev/mmcblk0p5\n');
  t.not((await run('sh', [BACKEND, 'get-current'], { VIGIL_LIB: LIB, VIGIL_CMDLINE_FILE: cmdline })).code, 0, 'no vigil.slot= is an error');
});
