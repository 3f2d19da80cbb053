// /usr/lib/vigil/network-config and /usr/lib/vigil/host-name (docs/firmware.md, "Card settings
// (vigil.txt)"): the interfaces file, wpa_supplicant.conf and resolv.conf made from card files,
// under dash and BusyBox sh. The Wi-Fi files are read back by the real wpa_supplicant (its debug
// output shows the SSID bytes and the key it derives), and the key is checked against PBKDF2.
import t from 'tap';
import { pbkdf2Sync } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpDir, type Teardown } from '../helpers/tmp.js';
import { LIB, OVERLAY, run, shells, type Shell } from './card-scripts.js';

const SCRIPT = join(OVERLAY, 'usr/lib/vigil/network-config');
const HOST_NAME = join(OVERLAY, 'usr/lib/vigil/host-name');
const BOM = '\uFEFF';
const env = { VIGIL_LIB: LIB, VIGIL_DEFAULTS_FILE: '/nonexistent' };


const WPA_SUPPLICANT = (await run('sh', ['-c', 'PATH=$PATH:/usr/sbin:/sbin command -v wpa_supplicant'])).stdout.trim();

interface Generated {
  code: number;
  stderr: string;
  dir: string;
  files: string[];
  interfaces: string;
  wpa?: string;
  resolv?: string;
}

async function generate(t: Teardown, shell: Shell, card: string | null, extraEnv: NodeJS.ProcessEnv = {}): Promise<Generated> {
  const base = await tmpDir(t, 'vigil-netcfg-');
  const cardFile = join(base, 'card.txt');
  if (card !== null) await writeFile(cardFile, card);
  const dir = join(base, 'network');
  const r = await shell.run(SCRIPT, [cardFile, dir, 'vigil-ab12'], { ...env, ...extraEnv });
  const files = (await readdir(dir).catch(() => [] as string[])).sort();
  const read = (f: string) => readFile(join(dir, f), 'utf8').catch(() => undefined);
  return { code: r.code, stderr: r.stderr, dir, files, interfaces: (await read('interfaces')) ?? '', wpa: await read('wpa_supplicant.conf'), resolv: await read('resolv.conf') };
}

/** What wpa_supplicant makes of a config file: the SSID bytes and the 32-byte PSK (hex). */
async function wpaReads(conf: string): Promise<{ ssid: Buffer; psk?: string; open: boolean; out: string }> {
  const r = await run(WPA_SUPPLICANT, ['-dd', '-K', '-c', conf, '-i', 'vigilnone0', '-D', 'wired']);
  const out = r.stdout + r.stderr;
  const lines = out.split('\n');
  const at = lines.findIndex((l) => /^ssid - hexdump_ascii\(len=\d+\):/.test(l));
  const len = Number(/len=(\d+)/.exec(lines[at] ?? '')?.[1] ?? -1);
  const bytes: number[] = [];
  for (let i = at + 1; i > 0 && bytes.length < len && i < lines.length; i++) {
    for (const h of (lines[i] ?? '').slice(0, 53).trim().split(/\s+/)) if (/^[0-9a-f]{2}$/.test(h)) bytes.push(parseInt(h, 16));
  }
  const psk = /PSK(?: \(from passphrase\))? - hexdump\(len=32\): ([0-9a-f ]+)/.exec(out)?.[1]?.replace(/ /g, '');
  return { ssid: Buffer.from(bytes.slice(0, len)), psk, open: /key_mgmt: 0x4\b/.test(out), out };
}

const TRICKY_SSID = `Caf\u00e9 "Le Chat" \\ $HOME 'x'`;
const TRICKY_PASS = `p"a ss\\w$(reboot)'d #1`;
const QUOTABLE_PASS = `p"a ss\\w$(reboot)'d "1`;

for (const shell of await shells(t)) {
  t.test(`${shell.name}: no card file: DHCP on eth0 with the host name`, async (t) => {
    const g = await generate(t, shell, null);
    t.equal(g.code, 0, g.stderr);
    t.same(g.files, ['interfaces']);
    t.match(g.interfaces, /^auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n\thostname vigil-ab12\n$/m);
    t.notMatch(g.interfaces, /wlan0/);
    t.match(g.stderr, /eth0 DHCP; host name vigil-ab12/);
  });

  t.test(`${shell.name}: static wired address (BOM, CRLF, quotes, comma-separated DNS)`, async (t) => {
    const g = await generate(
      t,
      shell,
      `${BOM}# settings\r\nCLOUD_URL=https://cloud.example.com\r\nADDRESS = "192.168.10.50/20"\r\nGATEWAY=192.168.10.1\r\nDNS=192.168.10.1, 9.9.9.9\r\n`,
    );
    t.equal(g.code, 0, g.stderr);
    t.same(g.files, ['interfaces', 'resolv.conf']);
    t.match(g.interfaces, /\nauto eth0\niface eth0 inet static\n\taddress 192\.168\.10\.50\n\tnetmask 255\.255\.240\.0\n\tgateway 192\.168\.10\.1\n/);
    t.notMatch(g.interfaces, /dhcp/);
    t.match(g.resolv, /\nnameserver 192\.168\.10\.1\nnameserver 9\.9\.9\.9\n$/);
  });

  t.test(`${shell.name}: Wi-Fi WPA with quotes, backslash, spaces, $ in SSID and passphrase`, async (t) => {
    // Without wpa_passphrase the passphrase is written quoted; wpa_supplicant then takes a #
    // after an odd number of quotes for a comment, so that form gets one without #
    for (const [how, pass, extra] of [
      ['wpa_passphrase', TRICKY_PASS, {}],
      ['quoted passphrase', QUOTABLE_PASS, { VIGIL_WPA_PASSPHRASE: '' }],
    ] as const) {
      const g = await generate(t, shell, `WIFI_SSID=${TRICKY_SSID}\nWIFI_PASSWORD=${pass}\nWIFI_COUNTRY=gb\n`, extra);
      t.equal(g.code, 0, g.stderr);
      t.same(g.files, ['interfaces', 'wpa_supplicant.conf'], how);
      t.equal((await stat(join(g.dir, 'wpa_supplicant.conf'))).mode & 0o777, 0o600, `${how}: the key file is 0600`);
      t.match(g.interfaces, /\nauto eth0\niface eth0 inet dhcp\n/, `${how}: eth0 keeps DHCP`);
      t.match(g.interfaces, new RegExp(`\\nauto wlan0\\niface wlan0 inet dhcp\\n\\thostname vigil-ab12\\n[^]*pre-up wpa_supplicant -B -s -D nl80211 -i wlan0 -c ${g.dir}/wpa_supplicant\\.conf`), how);
      t.match(g.wpa, /^country=GB$/m, `${how}: the country, upper case`);
      t.match(g.wpa, /^\tkey_mgmt=WPA-PSK$/m);
      if (how === 'wpa_passphrase') t.match(g.wpa, /^\tpsk=[0-9a-f]{64}$/m, 'the key, not the passphrase');
      else t.ok(g.wpa?.includes(`\tpsk="${pass}"\n`), 'the passphrase, quoted');
      t.notMatch(g.stderr, /passphrase|reboot/i, 'the passphrase is not logged');
      const seen = await wpaReads(join(g.dir, 'wpa_supplicant.conf'));
      t.equal(seen.ssid.toString('utf8'), TRICKY_SSID, `${how}: wpa_supplicant reads the SSID's bytes`);
      t.equal(seen.psk, pbkdf2Sync(pass, TRICKY_SSID, 4096, 32, 'sha1').toString('hex'), `${how}: and derives the right key`);
    }
    const g = await generate(t, shell, `WIFI_SSID=Cafe\nWIFI_PASSWORD=${TRICKY_PASS}\n`, { VIGIL_WPA_PASSPHRASE: '' });
    t.same(g.files, ['interfaces'], 'no wpa_passphrase, a passphrase with " and #: no Wi-Fi files');
    t.match(g.stderr, /WIFI_PASSWORD holds both " and # and there is no wpa_passphrase .*Wi-Fi left out/);
  });

  t.test(`${shell.name}: Wi-Fi with a static address, open network`, async (t) => {
    const g = await generate(t, shell, 'WIFI_SSID=Guests\nWIFI_PASSWORD=\nWIFI_COUNTRY=DE\nADDRESS=10.1.2.3/24\nGATEWAY=10.1.2.1\nDNS=10.1.2.1\n');
    t.equal(g.code, 0, g.stderr);
    t.same(g.files, ['interfaces', 'resolv.conf', 'wpa_supplicant.conf']);
    t.match(g.interfaces, /\nauto eth0\niface eth0 inet dhcp\n/, 'the cable keeps DHCP');
    t.match(g.interfaces, /\nauto wlan0\niface wlan0 inet static\n\taddress 10\.1\.2\.3\n\tnetmask 255\.255\.255\.0\n\tgateway 10\.1\.2\.1\n/);
    t.match(g.wpa, /^\tkey_mgmt=NONE$/m);
    t.notMatch(g.wpa, /psk/);
    const seen = await wpaReads(join(g.dir, 'wpa_supplicant.conf'));
    t.equal(seen.ssid.toString(), 'Guests');
    t.ok(seen.open, 'wpa_supplicant reads an open network');
    t.match(g.stderr, /wlan0 Wi-Fi 'Guests' \(open, country DE\), static 10\.1\.2\.3\/24/);
  });

  t.test(`${shell.name}: a passphrase of the wrong length: wired only, and why`, async (t) => {
    for (const pass of ['short12', 'x'.repeat(64)]) {
      const g = await generate(t, shell, `WIFI_SSID=Cafe\nWIFI_PASSWORD=${pass}\nWIFI_COUNTRY=GB\nADDRESS=10.0.0.9/8\n`);
      t.equal(g.code, 0, g.stderr);
      t.same(g.files, ['interfaces'], `${pass.length} characters: no Wi-Fi files`);
      t.notMatch(g.interfaces, /wlan0/);
      t.match(g.interfaces, /iface eth0 inet static\n\taddress 10\.0\.0\.9\n\tnetmask 255\.0\.0\.0\n/, 'the static address goes to the cable');
      t.match(g.stderr, new RegExp(`WIFI_PASSWORD is ${pass.length} characters; WPA needs 8 to 63 .*Wi-Fi left out, the cable \\(eth0\\) is used`));
    }
  });

  t.test(`${shell.name}: bad addresses are left out with a message`, async (t) => {
    for (const bad of ['192.168.1.300/24', '192.168.1.5', '10.0.0.1/33', '10.0.0.1/0', 'fe80::1/64', '1.2.3/24']) {
      const g = await generate(t, shell, `ADDRESS=${bad}\nGATEWAY=192.168.1.1\nDNS=1.1.1.1\n`);
      t.equal(g.code, 0, g.stderr);
      t.match(g.interfaces, /iface eth0 inet dhcp/, `${bad}: DHCP`);
      t.same(g.files, ['interfaces'], `${bad}: no resolv.conf`);
      t.ok(g.stderr.includes(`ADDRESS '${bad}' is not an IPv4 address with a prefix length`), `${bad}: said`);
    }
    const g = await generate(t, shell, 'ADDRESS=10.0.0.2/24\nGATEWAY=10.0.0.256\nDNS=10.0.0.1 dns.example 8.8.8.8\nWIFI_COUNTRY=XYZ\n');
    t.match(g.interfaces, /iface eth0 inet static\n\taddress 10\.0\.0\.2\n\tnetmask 255\.255\.255\.0\n(?!\tgateway)/);
    t.match(g.stderr, /GATEWAY '10\.0\.0\.256' is not an IPv4 address: left out/);
    t.match(g.stderr, /DNS server 'dns\.example' is not an IPv4 address: left out/);
    t.match(g.stderr, /WIFI_PASSWORD or WIFI_COUNTRY without WIFI_SSID: ignored/);
    t.equal(g.resolv, '# Written at boot by /usr/lib/vigil/network-config from the card\'s settings (vigil.txt).\nnameserver 10.0.0.1\nnameserver 8.8.8.8\n');
    const g2 = await generate(t, shell, 'WIFI_SSID=Cafe\nWIFI_PASSWORD=12345678\nWIFI_COUNTRY=Britain\nGATEWAY=10.0.0.1\n');
    t.match(g2.stderr, /WIFI_COUNTRY 'Britain' is not a two-letter country code/);
    t.match(g2.stderr, /GATEWAY or DNS without ADDRESS: ignored/);
    t.notMatch(g2.wpa, /country=/);
  });

  t.test(`${shell.name}: host-name`, async (t) => {
    const base = await tmpDir(t, 'vigil-hostname-');
    const f = (name: string, content: string) => writeFile(join(base, name), content).then(() => join(base, name));
    const dt = await f('serial-number', '10000000abcdEF12\0');
    const zeros = await f('zeros', '0000000000000000\0');
    const cpuinfo = await f('cpuinfo', 'processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 100000009876BEEF\nModel\t: Raspberry Pi 4\n');
    const cpuinfoNone = await f('none-cpuinfo', 'processor\t: 0\n');
    const machineId = await f('machine-id', '0123456789abcdef0123456789ab7c3d\n');
    const hn = (sources: string[]) => shell.run(HOST_NAME, [], { VIGIL_SERIAL_SOURCES: sources.join(' ') });
    t.equal((await hn([dt, cpuinfo, machineId])).stdout, 'vigil-ef12\n', 'the device tree serial, lower case');
    t.equal((await hn([zeros, cpuinfo, machineId])).stdout, 'vigil-beef\n', 'a zero serial does not count: cpuinfo');
    t.equal((await hn([join(base, 'missing'), cpuinfoNone, machineId])).stdout, 'vigil-7c3d\n', 'machine-id last');
    const none = await hn([join(base, 'missing'), cpuinfoNone]);
    t.equal(none.stdout, 'vigil\n');
    t.equal(none.code, 1, 'no serial: exit 1');
  });
}
