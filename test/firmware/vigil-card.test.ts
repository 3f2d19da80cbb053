// /usr/sbin/vigil-card (docs/firmware.md, "Card settings (vigil.txt)"): `read` copies the card's
// vigil.txt to the copy the agent reads; `erase-claim` takes the CLAIM_CODE line out of both and
// leaves every other byte. In VIGIL_CARD_DIR mode (a directory stands in for the mounted card)
// under dash and BusyBox sh; as root also on a real FAT filesystem on a loop device (the mount
// path of the device) and on a read-only filesystem (the refusal).
import t from 'tap';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { LIB, OVERLAY, run, shells } from './card-scripts.js';

const SCRIPT = join(OVERLAY, 'usr/sbin/vigil-card');
const isRoot = process.getuid?.() === 0;
const BOM = '\uFEFF';

const CARD =
  `${BOM}# Vigil device settings: NAME=value, one per line\r\n` +
  'CLOUD_URL=https://cloud.example.com\r\n' +
  '\r\n' +
  '# the code from the dashboard\r\n' +
  'CLAIM_CODE=ABCD-EFGH-JKMN\r\n' +
  'SETUP_PIN=48213957\r\n' +
  'WIFI_SSID="Restaurant Wifi"\r\n' +
  'WIFI_PASSWORD=secret phrase';
const CARD_WITHOUT_CLAIM = CARD.replace('CLAIM_CODE=ABCD-EFGH-JKMN\r\n', '');


for (const shell of await shells(t)) {
  t.test(`${shell.name}: VIGIL_CARD_DIR mode`, async (t) => {
    const base = await tmpDir(t, 'vigil-card-');
    const card = join(base, 'card');
    const copy = join(base, 'run/vigil/card.txt');
    await mkdir(card);
    const env = { VIGIL_LIB: LIB, VIGIL_DEFAULTS_FILE: '/nonexistent', VIGIL_CARD_DIR: card, VIGIL_CARD_COPY: copy };
    const vc = (cmd: string) => shell.run(SCRIPT, [cmd], env);

    t.test('read copies vigil.txt byte for byte, mode 0600', async (t) => {
      await writeFile(join(card, 'vigil.txt'), CARD);
      const r = await vc('read');
      t.equal(r.code, 0, r.stderr);
      t.equal(await readFile(copy, 'utf8'), CARD, 'the copy is the card file (BOM and CRLF kept)');
      t.equal((await stat(copy)).mode & 0o777, 0o600, 'only root reads the copy');
      t.match(r.stderr, /copied to/);
    });

    t.test('erase-claim removes the CLAIM_CODE line from the card and from the copy, nothing else', async (t) => {
      const r = await vc('erase-claim');
      t.equal(r.code, 0, r.stderr);
      t.equal(await readFile(join(card, 'vigil.txt'), 'utf8'), CARD_WITHOUT_CLAIM, 'card: every other byte kept');
      t.equal(await readFile(copy, 'utf8'), CARD_WITHOUT_CLAIM, 'copy: every other byte kept');
      t.equal((await stat(copy)).mode & 0o777, 0o600, 'the copy stays 0600');
      t.same((await readdir(card)).sort(), ['vigil.txt'], 'no vigil.new left behind');
      t.match(r.stderr, /CLAIM_CODE erased from the card/);
    });

    t.test('erase-claim again: nothing to erase, exit 0, file untouched', async (t) => {
      const before = await stat(join(card, 'vigil.txt'));
      const r = await vc('erase-claim');
      t.equal(r.code, 0, r.stderr);
      t.match(r.stderr, /holds no CLAIM_CODE: nothing to erase/);
      t.equal(await readFile(join(card, 'vigil.txt'), 'utf8'), CARD_WITHOUT_CLAIM);
      t.equal((await stat(join(card, 'vigil.txt'))).mtimeMs, before.mtimeMs, 'not rewritten');
    });

    t.test('a CLAIM_CODE first line keeps the BOM; a last line without newline goes too', async (t) => {
      await writeFile(join(card, 'vigil.txt'), `${BOM}CLAIM_CODE = "WXYZ-1234"\nCLOUD_URL=http://a\n  CLAIM_CODE=again`);
      const r = await vc('erase-claim');
      t.equal(r.code, 0, r.stderr);
      t.equal(await readFile(join(card, 'vigil.txt'), 'utf8'), `${BOM}\nCLOUD_URL=http://a\n`);
    });

    t.test('a line that only mentions CLAIM_CODE stays', async (t) => {
      const text = '# CLAIM_CODE=in a comment\nCLAIM_CODES=not the name\n';
      await writeFile(join(card, 'vigil.txt'), text);
      const r = await vc('erase-claim');
      t.equal(r.code, 0, r.stderr);
      t.equal(await readFile(join(card, 'vigil.txt'), 'utf8'), text);
    });

    t.test('a card without vigil.txt: read removes the copy, erase-claim has nothing to do', async (t) => {
      await vc('read');
      t.ok(await stat(copy).catch(() => null), 'a copy exists before');
      await run('rm', ['-f', join(card, 'vigil.txt')]);
      let r = await vc('read');
      t.equal(r.code, 0, r.stderr);
      t.equal(await stat(copy).catch(() => null), null, 'the copy is gone');
      t.match(r.stderr, /no vigil\.txt/);
      r = await vc('erase-claim');
      t.equal(r.code, 0, r.stderr);
      t.match(r.stderr, /no claim code to erase/);
    });

    t.test('a huge vigil.txt is not copied', async (t) => {
      await writeFile(join(card, 'vigil.txt'), '#'.repeat(70000));
      const r = await vc('read');
      t.not(r.code, 0);
      t.match(r.stderr, /70000 bytes, more than 65536/);
      t.equal(await stat(copy).catch(() => null), null);
    });

    t.test('usage', async (t) => {
      const r = await vc('frobnicate');
      t.not(r.code, 0);
      t.match(r.stderr, /usage: vigil-card read \| erase-claim/);
    });
  });
}

t.test('as root: the card on a FAT filesystem, mounted by vigil-card', { skip: isRoot ? false : 'needs root (loop device, mount)' }, async (t) => {
  const base = await tmpDir(t, 'vigil-card-fat-');
  const img = join(base, 'p1.vfat');
  let r = await run('truncate', ['-s', '16M', img]);
  r = await run('mkfs.vfat', ['-F', '16', '-n', 'AUTOBOOT', img]);
  t.equal(r.code, 0, r.stderr);
  await writeFile(join(base, 'vigil.txt'), CARD);
  r = await run('mcopy', ['-i', img, join(base, 'vigil.txt'), '::vigil.txt']);
  t.equal(r.code, 0, r.stderr);
  r = await run('losetup', ['--find', '--show', img]);
  if (r.code !== 0) {
    t.comment(`skipped: no loop device here: ${r.stderr}`);
    return;
  }
  const loop = r.stdout.trim();
  t.teardown(() => run('losetup', ['-d', loop]));
  const mounts = join(base, 'run');
  const copy = join(mounts, 'card.txt');
  const env = { VIGIL_LIB: LIB, VIGIL_DEFAULTS_FILE: '/nonexistent', VIGIL_CARD_DEVICE: loop, VIGIL_CARD_COPY: copy, VIGIL_CARD_MOUNT_BASE: mounts };

  r = await run('sh', [SCRIPT, 'read'], env);
  if (!/\bvfat$/m.test(await readFile('/proc/filesystems', 'utf8'))) {
    // A container's kernel may lack FAT (the QEMU system test mounts the real card)
    t.not(r.code, 0, 'no vfat in this kernel: read fails');
    t.match(r.stderr, new RegExp(`cannot mount ${loop} \\(vfat, ro\\)`), 'and says why');
    t.same(await readdir(mounts), [], 'the private mount directory is gone');
    t.comment('this kernel has no vfat: the mounted path is left to the QEMU system test');
    return;
  }
  t.equal(r.code, 0, r.stderr);
  t.equal(await readFile(copy, 'utf8'), CARD, 'read through a read-only vfat mount');
  t.same(await readdir(mounts), ['card.txt'], 'the private mount directory is gone');
  t.notMatch(await readFile('/proc/mounts', 'utf8'), loop, 'nothing left mounted');

  r = await run('sh', [SCRIPT, 'erase-claim'], env);
  t.equal(r.code, 0, r.stderr);
  r = await run('mtype', ['-i', img, '::vigil.txt']);
  t.equal(r.stdout, CARD_WITHOUT_CLAIM, 'the FAT file lost its CLAIM_CODE line only');
  t.equal(await readFile(copy, 'utf8'), CARD_WITHOUT_CLAIM);
  r = await run('mdir', ['-b', '-i', img, '::']);
  t.notMatch(r.stdout, /vigil\.new/i, 'no vigil.new on the card');
  r = await run('fsck.vfat', ['-n', img]);
  t.equal(r.code, 0, `the FAT is clean\n${r.stdout}`);

  r = await run('sh', [SCRIPT, 'read'], { ...env, VIGIL_CARD_DEVICE: join(base, 'nothing') });
  t.not(r.code, 0);
  t.match(r.stderr, /no card partition .*nothing/);
});

t.test('as root: a card that cannot be written', { skip: isRoot ? false : 'needs root (mount)' }, async (t) => {
  const base = await tmpDir(t, 'vigil-card-ro-');
  const card = join(base, 'card');
  const copy = join(base, 'card.txt');
  await mkdir(card);
  await writeFile(join(card, 'vigil.txt'), CARD);
  await writeFile(copy, CARD);
  let r = await run('mount', ['--bind', '-o', 'ro', card, card]);
  if (r.code !== 0) {
    t.comment(`skipped: cannot bind-mount here: ${r.stderr}`);
    return;
  }
  t.teardown(() => run('umount', ['-l', card]));
  r = await run('mount', ['-o', 'remount,bind,ro', card]);
  t.equal(r.code, 0, r.stderr);
  r = await run('sh', [SCRIPT, 'erase-claim'], { VIGIL_LIB: LIB, VIGIL_DEFAULTS_FILE: '/nonexistent', VIGIL_CARD_DIR: card, VIGIL_CARD_COPY: copy });
  t.not(r.code, 0, 'non-zero when the card cannot be written');
  t.match(r.stderr, /cannot write vigil\.txt on the card .*the claim code stays on it/);
  t.equal(await readFile(join(card, 'vigil.txt'), 'utf8'), CARD, 'the card file is as it was');
  t.equal(await readFile(copy, 'utf8'), CARD_WITHOUT_CLAIM, 'the copy lost the code all the same');
});
