// `make flash ... CLOUD= CLAIM= WIFI_SSID=...` and `make card-file` (scripts/card-settings.sh,
// scripts/flash.sh; docs/firmware.md, "Card settings (vigil.txt)"): vigil.txt onto p1 of a disk
// image laid out like the card (MBR, p1 FAT16 "AUTOBOOT" at 4 MiB), checked by reading it back
// with mtools, with the agent's own parser and with the device's network script; the refusals
// write nothing. As root, `make flash` itself on a loop device.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseCardSettings } from '../../agent/src/provision/card-settings.js';
import { tmpDir, type Teardown } from '../helpers/tmp.js';
import { readCardFile, writeCardFile } from '../system/card.js';
import { LIB, OVERLAY, ROOT, run } from './card-scripts.js';

const exec = promisify(execFile);
const CARD_SETTINGS = join(ROOT, 'scripts/card-settings.sh');
const isRoot = process.getuid?.() === 0;
const MiB = 1024 * 1024;

/** A 64 MiB image: p1 FAT16 at 4 MiB (16 MiB) labelled `label`, p2 after it, as board/rpi4/genimage.cfg lays out the card. */
async function cardImage(t: Teardown, label = 'AUTOBOOT'): Promise<string> {
  const dir = await tmpDir(t, 'vigil-cardimg-');
  const img = join(dir, 'sdcard.img');
  const p1 = join(dir, 'p1.vfat');
  await exec('truncate', ['-s', '64M', img]);
  const table = await run('sfdisk', ['-q', img], {}, 'label: dos\nstart=8192, size=32768, type=c, bootable\nstart=40960, type=83\n');
  if (table.code !== 0) throw new Error(`sfdisk: ${table.stderr}`);
  await exec('truncate', ['-s', '16M', p1]);
  await exec('mkfs.vfat', ['-F', '16', '-n', label, p1]);
  await exec('dd', [`if=${p1}`, `of=${img}`, `bs=${MiB}`, 'seek=4', 'conv=notrunc', 'status=none']);
  await writeCardFile(img, 'autoboot.txt', '[all]\ntryboot_a_b=1\nboot_partition=2\n');
  return img;
}

const SETTINGS = {
  CLOUD: 'https://cloud.example.com',
  CLAIM: 'ABCD-EFGH-JKMN',
  WIFI_SSID: ' Caf\u00e9 "Le Chat" ',
  WIFI_PASSWORD: `pa$$ w"o\\rd #1`,
  WIFI_COUNTRY: 'gb',
  ADDRESS: '192.168.1.50/24',
  GATEWAY: '192.168.1.1',
  DNS: '192.168.1.1,9.9.9.9',
};


t.test('card-settings.sh file: vigil.txt on p1, read back by mtools, the agent and the network script', async (t) => {
  const img = await cardImage(t);
  const r = await run('sh', [CARD_SETTINGS, 'file', img], SETTINGS);
  t.equal(r.code, 0, r.stderr);
  const pin = /SETUP_PIN=(\d{8}) \(made up: write it on the device label/.exec(r.stdout)?.[1];
  t.ok(pin, 'a SETUP_PIN was made up and printed for the label');
  const text = await readCardFile(img, 'vigil.txt');
  t.ok(text, 'p1 holds vigil.txt');
  t.equal(await readCardFile(img, 'autoboot.txt'), '[all]\ntryboot_a_b=1\nboot_partition=2\n', 'autoboot.txt untouched');

  const parsed = parseCardSettings(text ?? '', 'vigil.txt');
  t.same(parsed.warnings, [], 'the agent reads it without a warning');
  t.same(
    parsed.values,
    {
      CLOUD_URL: SETTINGS.CLOUD,
      CLAIM_CODE: SETTINGS.CLAIM,
      SETUP_PIN: pin,
      WIFI_SSID: SETTINGS.WIFI_SSID,
      WIFI_PASSWORD: SETTINGS.WIFI_PASSWORD,
      WIFI_COUNTRY: 'GB',
      ADDRESS: SETTINGS.ADDRESS,
      GATEWAY: SETTINGS.GATEWAY,
      DNS: '192.168.1.1 9.9.9.9',
    },
    'every value as given (the SSID keeps its spaces and quotes)',
  );

  const dir = await tmpDir(t, 'vigil-cardimg-net-');
  await writeFile(join(dir, 'card.txt'), text ?? '');
  const net = await run('sh', [join(OVERLAY, 'usr/lib/vigil/network-config'), join(dir, 'card.txt'), join(dir, 'out'), 'vigil-ab12'], {
    VIGIL_LIB: LIB,
    VIGIL_DEFAULTS_FILE: '/nonexistent',
  });
  t.equal(net.code, 0, net.stderr);
  t.match(await readFile(join(dir, 'out/interfaces'), 'utf8'), /iface wlan0 inet static\n\taddress 192\.168\.1\.50\n/, 'the device puts the address on wlan0');
  const hex = Buffer.from(SETTINGS.WIFI_SSID).toString('hex');
  t.match(await readFile(join(dir, 'out/wpa_supplicant.conf'), 'utf8'), new RegExp(`\\tssid=${hex}\\n`), 'and joins the SSID as given');

  const again = await run('sh', [CARD_SETTINGS, 'file', img], { CLOUD: 'http://10.0.0.2:8080', SETUP_PIN: '12345678' });
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /SETUP_PIN=12345678 \(as given\)/);
  t.same(parseCardSettings((await readCardFile(img, 'vigil.txt')) ?? '', 'vigil.txt').values, { CLOUD_URL: 'http://10.0.0.2:8080', SETUP_PIN: '12345678' }, 'a second run replaces the file');
});

t.test('make card-file: make passes the settings ($$ for a $)', async (t) => {
  const img = await cardImage(t);
  const r = await run('make', ['-s', 'card-file', `IMAGE=${img}`, 'CLOUD=https://c.example', 'CLAIM=WXYZ-2345', 'WIFI_SSID=Shop', 'WIFI_PASSWORD=a$$b c d e f', 'WIFI_COUNTRY=DE']);
  t.equal(r.code, 0, r.stderr);
  const values = parseCardSettings((await readCardFile(img, 'vigil.txt')) ?? '', 'vigil.txt').values;
  t.equal(values.WIFI_PASSWORD, 'a$b c d e f');
  t.equal(values.CLAIM_CODE, 'WXYZ-2345');
});

t.test('refusals: every problem named, nothing written', async (t) => {
  const img = await cardImage(t);
  const cases: [Record<string, string>, RegExp[]][] = [
    [{}, [/no settings given/]],
    [{ CLOUD: 'ftp://cloud.example.com', CLAIM: 'x' }, [/CLOUD 'ftp:\/\/cloud\.example\.com' is not an http:\/\/ or https:\/\/ URL/, /CLAIM 'x' is not a claim code/]],
    [{ CLAIM: 'ABCD-EFGH' }, [/CLAIM needs CLOUD/]],
    [{ CLOUD: 'https://c.example', SETUP_PIN: '1234' }, [/SETUP_PIN '1234' is not 8 digits/]],
    [{ CLOUD: 'https://c.example', WIFI_SSID: 'Shop', WIFI_PASSWORD: 'short', WIFI_COUNTRY: 'GB' }, [/WIFI_PASSWORD is 5 characters; WPA needs 8 to 63/]],
    [{ CLOUD: 'https://c.example', WIFI_SSID: 'Shop', WIFI_PASSWORD: 'x'.repeat(64), WIFI_COUNTRY: 'GB' }, [/WIFI_PASSWORD is 64 characters/]],
    [{ CLOUD: 'https://c.example', WIFI_SSID: 'Shop' }, [/WIFI_SSID needs WIFI_COUNTRY/]],
    [{ CLOUD: 'https://c.example', WIFI_PASSWORD: '12345678' }, [/WIFI_PASSWORD and WIFI_COUNTRY go with WIFI_SSID/]],
    [{ CLOUD: 'https://c.example', ADDRESS: '192.168.1.50' }, [/ADDRESS '192\.168\.1\.50' is not an IPv4 address with a prefix length/, /ADDRESS needs GATEWAY/, /ADDRESS needs DNS/]],
    [{ CLOUD: 'https://c.example', ADDRESS: '10.0.0.300/24', GATEWAY: '10.0.0.1', DNS: '10.0.0.1 resolver' }, [/ADDRESS '10\.0\.0\.300\/24'/, /DNS server 'resolver' is not an IPv4 address/]],
    [{ CLOUD: 'https://c.example', DNS: '9.9.9.9' }, [/GATEWAY and DNS go with ADDRESS/]],
    [{ CLOUD: 'https://c.example', WIFI_SSID: 'two\nlines', WIFI_COUNTRY: 'GB' }, [/WIFI_SSID holds a control character/]],
  ];
  for (const [settings, reasons] of cases) {
    const r = await run('sh', [CARD_SETTINGS, 'file', img], settings);
    const label = JSON.stringify(settings);
    t.not(r.code, 0, `${label}: refused`);
    for (const reason of reasons) t.match(r.stderr, reason, `${label}: says ${reason.source}`);
    t.notMatch(r.stdout, /SETUP_PIN=/, `${label}: no PIN printed`);
  }
  t.equal(await readCardFile(img, 'vigil.txt'), null, 'the card has no vigil.txt');

  const notCard = await cardImage(t, 'BOOT_A');
  let r = await run('sh', [CARD_SETTINGS, 'file', notCard], { CLOUD: 'https://c.example' });
  t.not(r.code, 0);
  t.match(r.stderr, /is not the card's AUTOBOOT filesystem \(label 'BOOT_A'\)/, 'another FAT is not written');
  t.equal(await readCardFile(notCard, 'vigil.txt'), null);

  const dir = await tmpDir(t, 'vigil-notadisk-');
  await writeFile(join(dir, 'blank.img'), Buffer.alloc(MiB));
  r = await run('sh', [CARD_SETTINGS, 'file', join(dir, 'blank.img')], { CLOUD: 'https://c.example' });
  t.not(r.code, 0);
  t.match(r.stderr, /has no partition table sfdisk can read|has no partitions/);
  r = await run('sh', [CARD_SETTINGS, 'file', join(dir, 'missing.img')], { CLOUD: 'https://c.example' });
  t.match(r.stderr, /missing\.img does not exist/);
});

t.test('as root: make flash with card settings on a loop device', { skip: isRoot ? false : 'needs root (loop device)' }, async (t) => {
  const img = await cardImage(t);
  const dir = await tmpDir(t, 'vigil-flash-card-');
  const target = join(dir, 'card');
  await exec('truncate', ['-s', '64M', target]);
  const lo = await run('losetup', ['--find', '--show', target]);
  if (lo.code !== 0) {
    t.comment(`skipped: no loop device here: ${lo.stderr}`);
    return;
  }
  const loop = lo.stdout.trim();
  t.teardown(() => run('losetup', ['-d', loop]));
  const flash = (vars: string[]) => run('make', ['-s', 'flash', `DEVICE=${loop}`, `IMAGE=${img}`, 'FORCE=1', ...vars]);

  let r = await flash(['CLOUD=https://c.example', 'WIFI_SSID=Shop', 'WIFI_PASSWORD=short']);
  t.not(r.code, 0, 'bad settings: refused');
  t.match(r.stderr, /WIFI_PASSWORD is 5 characters/);
  t.match(r.stderr, /WIFI_SSID needs WIFI_COUNTRY/);
  const head = Buffer.alloc(512);
  const { open } = await import('node:fs/promises');
  const fh = await open(target, 'r');
  await fh.read(head, 0, 512, 0);
  await fh.close();
  t.ok(head.every((b) => b === 0), 'before anything was written to the card');

  r = await flash(['DRY_RUN=1', 'CLOUD=https://c.example', 'CLAIM=ABCD-EFGH', 'WIFI_SSID=Shop', 'WIFI_PASSWORD=secret phrase', 'WIFI_COUNTRY=GB']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /then vigil\.txt on its first partition:\n[^]*CLAIM_CODE=ABCD-EFGH\n[^]*WIFI_PASSWORD=\(not shown\)\n/, 'DRY_RUN shows the file, not the password');
  t.notMatch(r.stdout, /secret phrase/);
  t.match(r.stdout, /DRY_RUN=1: every check passed, nothing written/);

  r = await flash(['CLOUD=https://c.example', 'CLAIM=ABCD-EFGH', 'SETUP_PIN=87654321']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /vigil\.txt written to the first partition of/);
  t.match(r.stdout, /done; the card can be removed/);
  const values = parseCardSettings((await readCardFile(target, 'vigil.txt')) ?? '', 'vigil.txt').values;
  t.same(values, { CLOUD_URL: 'https://c.example', CLAIM_CODE: 'ABCD-EFGH', SETUP_PIN: '87654321' }, 'the card holds the image and vigil.txt');
  t.equal(await readCardFile(target, 'autoboot.txt'), '[all]\ntryboot_a_b=1\nboot_partition=2\n', 'the image is on the card');
});
