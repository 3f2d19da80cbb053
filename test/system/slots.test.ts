// System test: A/B updates with RAUC in the QEMU test image, the firmware side the agent's Updater
// drives (docs/firmware.md, "OTA bundles" and "Rebooting"). Real rauc in the guest, real signed
// verity bundles of the test image (board/qemu/build-bundle.sh), the harness playing the Pi
// firmware's autoboot.txt and one-shot tryboot flag (machine.ts):
//   1. slot A boots; a bundle with one flipped payload byte is refused and writes nothing;
//   2. a good bundle installs into B; `vigil-reboot tryboot` starts B once ([tryboot]); B runs the
//      new version; `rauc status mark-good` commits it; an ordinary reboot starts B ([all]);
//   3. from B, another bundle installs into A; its trial boot is never marked good; the next
//      ordinary reboot is back on B, the committed slot.
// The guest fetches bundles onto /data over a forwarded HTTP port, as the Updater does.
import t from 'tap';
import { createReadStream, statSync } from 'node:fs';
import { copyFile, open } from 'node:fs/promises';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startedFields } from '../helpers/agent-process.js';
import { buildBundle, buildImage, guestAgentConfig, qemuLock, type Guest } from './qemu.js';
import { makeDisk, partitionSha256 } from './disk.js';
import { machine, type Boot } from './machine.js';

t.setTimeout(15 * 60_000);

/** Where the guest fetches bundles: a forwarded address of its own (the cloud's stays unreachable). */
const GUEST_BUNDLES = { addr: '10.0.2.102', port: 80 };
const KEYRING = '/etc/rauc/keyring.pem';
const CARD_BYTES = 2 * 1024 ** 3;
const DATA_START_BYTES = 1312 * 1024 ** 2;
const ROOTFS_B_PARTITION = 6;
const BOOT_B_PARTITION = 3;
/** A RAUC install of a ~170 MB bundle under TCG: ~35 s alone; room for a loaded machine. */
const INSTALL_TIMEOUT_MS = 240_000;

t.test('QEMU: RAUC A/B updates, tryboot trials, commit and fall back', async (t) => {
  const image = await buildImage();
  const t0 = performance.now();
  const v2 = await buildBundle('2.0.0-slots');
  const v3 = await buildBundle('3.0.0-slots');
  t.comment(`bundles ${basename(v2.path)} (${Math.round(v2.buildMs)} ms) and ${basename(v3.path)} (${Math.round(v3.buildMs)} ms), ${Math.round(statSync(v2.path).size / 1048576)} MiB each`);
  const dir = join(image.image, '..', '..', 'bundles');
  // One flipped byte in the middle of the payload (the signature is intact: covers the verity hash)
  const tampered = join(dir, 'tampered.raucb');
  await copyFile(v2.path, tampered);
  const fh = await open(tampered, 'r+');
  const at = Math.floor(statSync(tampered).size / 2);
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0]! ^= 0xff;
  await fh.write(b, 0, 1, at);
  await fh.close();
  t.teardown(async () => {
    const { rm } = await import('node:fs/promises');
    await rm(tampered, { force: true });
  });

  const served = new Map([v2.path, v3.path, tampered].map((p) => [`/${basename(p)}`, p]));
  const server = createServer((req, res) => {
    const file = served.get(req.url ?? '');
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => void server.close());
  const port = (server.address() as { port: number }).port;

  await qemuLock(t);
  // A 2 GiB card: the first boot grows /data to its end (~740 MiB instead of 256), room for the
  // agent's data beside a downloaded bundle
  const disk = await makeDisk(
    t,
    image.image,
    {
      'vigil/agent.json': JSON.stringify(guestAgentConfig('unused', []), null, 2),
      'vigil/board-serial': '10000000c0ffee05\n',
    },
    { sizeBytes: CARD_BYTES },
  );
  const m = await machine(t, disk, { forward: { [`${GUEST_BUNDLES.addr}:${GUEST_BUNDLES.port}`]: port }, name: 'slots' });
  t.teardown(() => {
    if (t.passing()) return;
    t.comment(`serial console of boot ${m.current().n} (last lines):\n${m.current().guest.tail(80)}`);
  });

  const sh = async (g: Guest, cmd: string, timeoutMs?: number): Promise<string> => {
    const r = await g.run(cmd, timeoutMs);
    t.equal(r.rc, 0, `${cmd}: exit 0`, { output: r.out });
    return r.out;
  };
  const raucReady = async (b: Boot): Promise<void> => {
    // Printed from the background while rcS goes on: it may share a line with the login prompt
    const l = await b.guest.waitForLine(/SYSTEST_RAUC (ready|failed)$/);
    t.match(l.text, /SYSTEST_RAUC ready$/, `boot ${b.n}: rauc service up`);
  };
  const booted = async (g: Guest): Promise<string> => /RAUC_SYSTEM_BOOTED_BOOTNAME='(\w)'/.exec(await sh(g, 'rauc status --output-format=shell'))?.[1] ?? '?';
  const fetchBundle = (g: Guest, file: string): Promise<string> =>
    sh(g, `wget -q -O /data/update.raucb http://${GUEST_BUNDLES.addr}/${basename(file)} && ls -l /data/update.raucb`, 120_000);
  const install = async (g: Guest): Promise<{ rc: number; out: string; ms: number }> => {
    const s = performance.now();
    // The agent's Updater's commands, as it runs them
    const r = await g.run(`rauc install --keyring=${KEYRING} /data/update.raucb; rc=$?; rm -f /data/update.raucb; exit $rc`, INSTALL_TIMEOUT_MS);
    return { ...r, ms: performance.now() - s };
  };
  const reboot = async (b: Boot, arg = ''): Promise<{ next: Boot; ms: number }> => {
    const s = performance.now();
    void b.guest.send(`run vigil-reboot ${arg}`);
    const next = await m.nextBoot(b.n);
    t.equal(await b.ended, 'reboot', `boot ${b.n} ended in an orderly reboot (vigil-reboot ${arg})`);
    await raucReady(next);
    return { next, ms: performance.now() - s };
  };
  const agentStarted = async (b: Boot): Promise<{ version: string | null; slot: string | null; trial: boolean; at: number }> => {
    const l = await b.guest.waitForAgentLog((x) => x.msg === 'agent started');
    const f = startedFields(l).firmware;
    return { version: f.version, slot: f.slot, trial: f.trial, at: l.at };
  };

  // 1. Slot A, fresh card
  const a1 = m.current();
  t.match(a1, { n: 1, section: 'all', partition: 2, root: '/dev/vda5' }, 'power-on: the firmware starts [all] boot_partition=2, slot A');
  await raucReady(a1);
  t.equal(await booted(a1.guest), 'a', 'rauc status: slot a booted (rauc.slot=a)');
  t.match((await a1.guest.waitForLine(/^SYSTEST_DATA /)).text, / ok$/, '/data checked and mounted');
  const dataBytes = Number(await sh(a1.guest, 'cat /sys/class/block/vda7/size')) * 512;
  t.ok(dataBytes > CARD_BYTES - DATA_START_BYTES - 8 * 1024 ** 2, `the first boot grew p7 to the end of the bigger card (${dataBytes} bytes)`);
  const dfKb = Number(/^\S+\s+(\d+)/m.exec((await sh(a1.guest, 'df -k /data | tail -n 1')))?.[1]);
  t.ok(dfKb * 1024 > 600 * 1024 ** 2, `and its filesystem with it (${dfKb} KiB)`);

  const p6Before = await partitionSha256(disk, ROOTFS_B_PARTITION);
  const p3Before = await partitionSha256(disk, BOOT_B_PARTITION);
  await fetchBundle(a1.guest, tampered);
  const refused = await install(a1.guest);
  t.not(refused.rc, 0, 'rauc install refuses a bundle with a flipped payload byte');
  t.match(refused.out, /does not read back intact|verif|corrupt/i, 'and says why');
  t.comment(`refusal of the tampered bundle: ${Math.round(refused.ms)} ms`);
  t.equal(await partitionSha256(disk, ROOTFS_B_PARTITION), p6Before, 'rootfs B (p6) untouched');
  t.equal(await partitionSha256(disk, BOOT_B_PARTITION), p3Before, 'boot B (p3) untouched');

  // 2. Install into B, trial, commit
  await fetchBundle(a1.guest, v2.path);
  const info = await sh(a1.guest, `rauc info --keyring=${KEYRING} --output-format=shell /data/update.raucb`);
  t.match(info, /^RAUC_MF_VERSION='2\.0\.0-slots'$/m, 'rauc info: the signed manifest, checked against the image\'s keyring');
  const i2 = await install(a1.guest);
  t.equal(i2.rc, 0, 'rauc install of 2.0.0-slots from slot A', { output: i2.out });
  t.comment(`install in the guest: ${Math.round(i2.ms)} ms`);
  t.match(await sh(a1.guest, 'rauc status --output-format=shell'), /RAUC_BOOT_PRIMARY='rootfs\.0'/, 'A stays the committed slot until B proves itself');
  const r1 = await reboot(a1, 'tryboot');
  const b2 = r1.next;
  t.match(b2, { section: 'tryboot', partition: 3, root: '/dev/vda6' }, 'vigil-reboot tryboot: the firmware starts [tryboot] boot_partition=3, slot B');
  t.notOk(m.trybootPending(), 'the one-shot flag is used up');
  t.comment(`reboot into the trial (vigil-reboot to rauc ready): ${Math.round(r1.ms)} ms`);
  const started2 = await agentStarted(b2);
  t.same(
    { version: started2.version, slot: started2.slot, trial: started2.trial },
    { version: '2.0.0-slots', slot: 'B', trial: true },
    'the trial runs the new release, and the agent knows it is a trial',
  );
  t.comment(`trial boot: power-on to agent started ${Math.round(started2.at)} ms`);
  t.equal(await booted(b2.guest), 'b', 'rauc status: slot b booted');
  await sh(b2.guest, 'rauc status mark-good');
  t.match(await sh(b2.guest, 'rauc status --output-format=shell'), /RAUC_BOOT_PRIMARY='rootfs\.1'/, 'mark-good commits B');

  const b3 = (await reboot(b2)).next;
  t.match(b3, { section: 'all', partition: 3, root: '/dev/vda6' }, 'an ordinary reboot: [all] now starts slot B');
  t.equal(await booted(b3.guest), 'b');

  // 3. From B into A, a trial that is never marked good
  await fetchBundle(b3.guest, v3.path);
  const i3 = await install(b3.guest);
  t.equal(i3.rc, 0, 'rauc install of 3.0.0-slots from slot B', { output: i3.out });
  const a4 = (await reboot(b3, 'tryboot')).next;
  t.match(a4, { section: 'tryboot', partition: 2, root: '/dev/vda5' }, 'the trial of the new A');
  t.match(await sh(a4.guest, '. /etc/vigil/release && echo $VIGIL_FIRMWARE_VERSION'), /^3\.0\.0-slots$/m, 'runs 3.0.0-slots');
  const b5 = (await reboot(a4)).next;
  t.match(b5, { section: 'all', partition: 3, root: '/dev/vda6' }, 'no mark-good: the next reboot is back on B, the committed slot');
  t.match(await sh(b5.guest, '. /etc/vigil/release && echo $VIGIL_FIRMWARE_VERSION'), /^2\.0\.0-slots$/m, 'running 2.0.0-slots again');
  t.equal(await booted(b5.guest), 'b');

  // A power cut loses the firmware's tryboot flag, as on a Pi
  await sh(b5.guest, 'vcmailbox 0x00038064 4 0 1');
  const end = performance.now() + 10_000;
  while (!m.trybootPending() && performance.now() < end) await new Promise((r) => setTimeout(r, 100));
  t.ok(m.trybootPending(), 'the firmware stand-in holds the tryboot flag');
  const b6 = await m.powerCut();
  t.equal(await b5.ended, 'cut', 'boot 5 ended in a power cut');
  t.match(b6, { n: 6, section: 'all', partition: 3 }, 'after a power cut the flag is gone: [all], slot B');

  await m.stop();
  t.comment(`slots test: ${Math.round((performance.now() - t0) / 1000)} s from the bundles to the last boot`);
});
