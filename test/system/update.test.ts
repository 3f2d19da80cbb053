// System test: the agent updates the device over the air, end to end. The QEMU test image runs
// the agent under init with real RAUC; the real cloud on the host holds the releases and the
// staged deployments; the harness plays the Pi firmware (autoboot.txt, the one-shot tryboot
// flag: machine.ts). Nothing in the guest is driven by hand: the agent does every step.
//   1. a bundle signed by another CA, and one with a flipped payload byte (small bundles: they
//      only have to be downloaded): the first fails `rauc info`, the second RAUC's install-check
//      (the whole payload is read before any slot is written); both reported `failed`, neither
//      tried again, p3/p6 unchanged;
//   2. a release whose agent cannot capture (its ffmpeg is broken): the download is cut half-way
//      and resumes (Range); installed into B; tryboot trial; never healthy, so after the trial's
//      time limit the agent reboots and the firmware brings A back; A reports `reverted` with the
//      reason and the deployment halts;
//   3. a good release: the power is cut while RAUC writes the slots; A boots, the agent installs
//      again, reboots into the trial, captures and uploads, commits (`rauc status mark-good`);
//      the device reports the new version, committed; autoboot.txt now names slot B.
import t, { type Test } from 'tap';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import type { HeartbeatRequest } from '@vigil/protocol';
import { startedFields } from '../helpers/agent-process.js';
import { startTestCloud, type TestCloud } from '../helpers/cloud.js';
import { startCutProxy } from '../helpers/cut-proxy.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { BOOT_TIMEOUT_MS, TOP, buildBundle, buildImage, forwardTo, guestAgentConfig, qemuLock, type Guest } from './qemu.js';
import { makeDisk, partitionSha256, partitions } from './disk.js';
import { machine, type Boot } from './machine.js';

const run = promisify(execFile);
t.setTimeout(25 * 60_000);

const ROOTFS_B_PARTITION = 6;
const BOOT_B_PARTITION = 3;
/** The trial's time limit (update.trialTimeoutMs): a trial boot reaches its first upload in ~30 s under TCG. */
const TRIAL_TIMEOUT_MS = 75_000;
/** Download (~175 MB through QEMU's user networking) + RAUC's install, under TCG on a loaded machine. */
const UPDATE_TIMEOUT_MS = 8 * 60_000;

interface DeploymentView {
  state: string;
  haltReason: string | null;
  devices: { deviceId: string; state: string; reason: string | null }[];
}

async function release(t: Test, cloud: TestCloud, version: string, file: string): Promise<string> {
  const body = await readFile(file);
  const res = await fetch(`${cloud.url}/admin/v1/firmware/releases?version=${version}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cloud.adminToken}`, 'content-type': 'application/octet-stream' },
    body,
  });
  t.equal(res.status, 201, `release ${version} uploaded (${Math.round(body.length / 1048576)} MiB)`);
  return ((await res.json()) as { id: string }).id;
}

async function deploy(t: Test, cloud: TestCloud, releaseId: string, deviceId: string): Promise<() => Promise<DeploymentView>> {
  const dep = await cloud.admin<{ id: string }>('POST', '/admin/v1/firmware/deployments', { releaseId, deviceIds: [deviceId], maxConcurrent: 1, failureThreshold: 1 });
  t.equal(dep.status, 201, 'deployment created');
  return async () => (await cloud.admin<DeploymentView>('GET', `/admin/v1/firmware/deployments/${dep.body.id}`)).body;
}

/**
 * A small bundle (a 300 kB rootfs, 1 MiB boot images): signed by a CA the devices do not trust
 * (`foreign`: scripts/ota-keys.sh DIR), or by the development keys with one payload byte
 * flipped afterwards (the signature intact: it covers the verity root hash, not each byte).
 */
async function smallBundle(dir: string, version: string, how: 'foreign' | 'flipped'): Promise<string> {
  const work = join(dir, `small-${how}`);
  await mkdir(join(work, 'root/etc'), { recursive: true });
  // RAUC's verity format wants a payload of more than one block
  await writeFile(join(work, 'root/etc/filler'), randomBytes(300_000));
  await run('mksquashfs', [join(work, 'root'), join(work, 'rootfs.squashfs'), '-quiet', '-noappend']);
  await run('mkfs.vfat', ['-C', join(work, 'boot.vfat'), '1024'], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  const env: NodeJS.ProcessEnv = { ...process.env, VIGIL_VERSION: version };
  if (how === 'foreign') {
    const keys = (await run('sh', [join(TOP, 'scripts/ota-keys.sh'), join(work, 'keys')])).stdout;
    for (const l of keys.trim().split('\n')) {
      const [k, v] = l.split('=') as [string, string];
      env[k] = v;
    }
  }
  const out = join(work, 'bundle.raucb');
  const boot = join(work, 'boot.vfat');
  await run('sh', [join(TOP, 'scripts/ota-bundle.sh'), boot, boot, join(work, 'rootfs.squashfs'), out], { env });
  if (how === 'flipped') {
    const fh = await open(out, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 100_000); // inside the squashfs payload, well before the signature
    b[0]! ^= 0xff;
    await fh.write(b, 0, 1, 100_000);
    await fh.close();
  }
  return out;
}

/** autoboot.txt from the card's first partition, read on the host (mtools). */
async function autoboot(disk: { path: string }): Promise<string> {
  const p1 = (await partitions(disk.path)).get(1)!;
  const { stdout } = await run('mtype', ['-i', `${disk.path}@@${p1.start}`, '::autoboot.txt'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  return stdout.replace(/\r/g, '');
}

t.test('QEMU: the agent updates the device: refused bundles, never healthy, power cut, commit', async (t) => {
  const image = await buildImage();
  const dir = await tmpDir(t, 'vigil-update-');
  // A release whose agent never gets healthy: its ffmpeg is a program that fails
  const broken = join(dir, 'broken');
  await mkdir(join(broken, 'etc/default'), { recursive: true });
  const defaults = await readFile(join(TOP, 'buildroot/package/vigil-agent/vigil-agent.default'), 'utf8');
  await writeFile(join(broken, 'etc/default/vigil-agent'), defaults.replace(/^VIGIL_FFMPEG=.*$/m, 'VIGIL_FFMPEG=/bin/false'));
  const t0 = performance.now();
  const [bad, good] = [await buildBundle('2.0.0-broken', broken), await buildBundle('2.0.0')];
  const foreign = await smallBundle(dir, '1.5.0', 'foreign');
  const flipped = await smallBundle(dir, '1.6.0', 'flipped');
  t.comment(`bundles built in ${Math.round((performance.now() - t0) / 1000)} s (cached when the image did not change)`);

  await qemuLock(t);
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1'] });
  const line = await startCutProxy(t, cloud.port);
  const config = guestAgentConfig(await cloud.claimCode('qemu-update'), ['/cam1'], {
    captureIntervalMs: 4000,
    heartbeatIntervalMs: 5000,
    update: { pollMs: 3000, trialTimeoutMs: TRIAL_TIMEOUT_MS },
  });
  // A 4 GiB card: the image's /data (256 MiB) grows to the end of the card at first boot
  // (S03vigil-data), room for a 170 MB bundle beside the 256 MiB the agent keeps for captures
  const disk = await makeDisk(
    t,
    image.image,
    { 'vigil/agent.json': JSON.stringify(config, null, 2), 'vigil/board-serial': '10000000c0ffee06\n' },
    { sizeBytes: 4 * 1024 ** 3 },
  );
  const m = await machine(t, disk, { forward: forwardTo(line.port, camera.port), name: 'update' });
  t.teardown(() => {
    if (t.passing()) return;
    t.comment(`serial console of boot ${m.current().n} (last lines):\n${m.current().guest.tail(80)}`);
  });
  const started = async (b: Boot) => startedFields(await b.guest.waitForAgentLog((l) => l.msg === 'agent started'));
  const updateLog = (g: Guest, state: string, from = 0) =>
    g.waitForAgentLog((l) => l.msg === `update ${state}`, UPDATE_TIMEOUT_MS, from);
  const report = async (deviceId: string) => (await cloud.admin<{ report: HeartbeatRequest | null }>('GET', `/admin/v1/devices/${deviceId}`)).body.report;

  // Slot A: claimed, capturing, uploading
  const a1 = m.current();
  const s1 = await started(a1);
  const v0 = s1.firmware.version;
  t.match(s1.firmware, { slot: 'A', trial: false }, `boot 1: slot A, firmware ${v0}`);
  await a1.guest.waitForAgentLog((l) => l.msg === 'uploaded', BOOT_TIMEOUT_MS);
  const df = await a1.guest.run('df -k /data | tail -n 1');
  const dataKb = Number(/^\S+\s+(\d+)/m.exec(df.out)?.[1]);
  // p7 starts 1312 MiB in: grown, it holds ~2.7 GiB (the image's was 256 MiB)
  t.ok(dataKb * 1024 > 2.5 * 1024 ** 3, `the first boot grew /data to the end of the 4 GiB card (${dataKb} KiB)`);
  const deviceId = (await cloud.admin<{ id: string }[]>('GET', '/admin/v1/devices')).body[0]!.id;

  // 1. Bundles that must not be installed: refused before any slot is written
  const p6 = await partitionSha256(disk, ROOTFS_B_PARTITION);
  const p3 = await partitionSha256(disk, BOOT_B_PARTITION);
  const foreignState = await deploy(t, cloud, await release(t, cloud, '1.5.0', foreign), deviceId);
  const refused1 = await updateLog(a1.guest, 'failed');
  t.match(refused1.reason, /^BUNDLE_INVALID: the bundle failed verification: .*signature verification failed/, `signed by another CA: ${String(refused1.reason)}`);
  await waitFor(async () => (await foreignState()).devices[0]?.state === 'failed', 30_000, 'the cloud to hear of the failure');
  const flippedState = await deploy(t, cloud, await release(t, cloud, '1.6.0', flipped), deviceId);
  const refused2 = await updateLog(a1.guest, 'failed', refused1.at + 1);
  t.match(refused2.reason, /^BUNDLE_INVALID: rauc install refused the bundle: .*does not read back intact/, `one flipped payload byte: ${String(refused2.reason)}`);
  await waitFor(async () => (await flippedState()).devices[0]?.state === 'failed', 30_000, 'the cloud to hear of the failure');
  t.equal(await partitionSha256(disk, ROOTFS_B_PARTITION), p6, 'rootfs B (p6) untouched');
  t.equal(await partitionSha256(disk, BOOT_B_PARTITION), p3, 'boot B (p3) untouched');
  t.equal(a1.guest.agentLogs.filter((l) => l.msg === 'update installing').length, 1, 'only the flipped one reached rauc install (its signature is good)');
  t.equal(a1.guest.agentLogs.filter((l) => l.msg === 'update downloading').length, 2, 'neither was tried again');
  const failed = refused2;

  // 2. A release that never gets healthy; its download is cut half-way
  line.setRule({ match: (l) => /^GET \S+\/bundle /.test(l), afterBytes: 60 * 1024 * 1024, times: 1 });
  const badState = await deploy(t, cloud, await release(t, cloud, '2.0.0-broken', bad.path), deviceId);
  const tUpdate = performance.now();
  await updateLog(a1.guest, 'trial', failed.at);
  t.equal(line.cuts.length, 1, 'the download was cut once, 60 MiB in');
  const resumed = a1.guest.agentLogs.find((l) => l.msg === 'bundle downloaded and checked' && l.at > failed.at);
  t.ok(Number(resumed?.resumedFrom) > 0, `the download resumed from byte ${String(resumed?.resumedFrom)}`);
  t.match(line.requests.filter((r) => /\/bundle /.test(r.requestLine)).at(-1), { range: `bytes=${String(resumed?.resumedFrom)}-` }, 'asking for the rest with Range');
  const b2 = await m.nextBoot(a1.n, UPDATE_TIMEOUT_MS);
  t.comment(`download + install + reboot into the trial: ${Math.round((performance.now() - tUpdate) / 1000)} s`);
  t.equal(await a1.ended, 'reboot', 'boot 1 ended in an orderly reboot');
  t.match(b2, { section: 'tryboot', partition: 3, root: '/dev/vda6' }, 'boot 2: the firmware starts the trial of slot B');
  const s2 = await started(b2);
  t.match(s2.firmware, { version: '2.0.0-broken', slot: 'B', trial: true }, 'the trial runs 2.0.0-broken');
  t.same(s2.lastReboot, { reason: 'planned', detail: 'update to 2.0.0-broken' }, 'and knows why it rebooted');
  const a3 = await m.nextBoot(b2.n, TRIAL_TIMEOUT_MS + BOOT_TIMEOUT_MS);
  t.match(b2.guest.agentLogs.find((l) => l.msg === 'trial boot failed; rebooting into the previous slot')?.reason, /no frame captured/, 'the trial gave up: no frame captured');
  t.match(a3, { section: 'all', partition: 2, root: '/dev/vda5' }, 'boot 3: the firmware brings slot A back');
  const s3 = await started(a3);
  t.match(s3.firmware, { version: v0, slot: 'A', trial: false }, `back on ${v0}`);
  const reverted = await updateLog(a3.guest, 'reverted');
  t.match(reverted.reason, /trial of 2\.0\.0-broken not healthy within 75 s of boot: no frame captured/);
  await waitFor(async () => (await badState()).state === 'halted', 30_000, 'the rollout to halt');
  const halted = await badState();
  t.match(halted.devices[0], { state: 'reverted', reason: /no frame captured/ }, 'the rollback reason is in the cloud');
  t.ok(halted.haltReason, `the rollout halted: ${halted.haltReason}`);

  // 3. A good release; the power is cut while RAUC writes the slots
  const goodState = await deploy(t, cloud, await release(t, cloud, '2.0.0', good.path), deviceId);
  const installing = await updateLog(a3.guest, 'installing');
  await a3.guest.waitForLine(/installing .*: Updating slots/, UPDATE_TIMEOUT_MS, installing.at);
  await new Promise((r) => setTimeout(r, 500 + Math.random() * 2000));
  t.notOk(a3.guest.agentLogs.some((l) => l.msg === 'update trial' && l.at > installing.at), 'the cut lands before the install finished');
  const a4 = await m.powerCut();
  t.equal(await a3.ended, 'cut', 'boot 3 ended in a power cut during the slot write');
  t.match(a4, { section: 'all', partition: 2, root: '/dev/vda5' }, 'boot 4: slot A, the committed one');
  const s4 = await started(a4);
  t.match(s4.firmware, { version: v0, slot: 'A' });
  t.equal(s4.lastReboot.reason, 'power_loss', 'the agent knows the power was cut');
  const tInstall = performance.now();
  await updateLog(a4.guest, 'trial');
  t.ok(a4.guest.agentLogs.some((l) => l.msg === 'bundle already downloaded and checked'), 'the bundle on /data was used again');
  const b5 = await m.nextBoot(a4.n, UPDATE_TIMEOUT_MS);
  t.comment(`install + reboot into the trial: ${Math.round((performance.now() - tInstall) / 1000)} s`);
  t.match(b5, { section: 'tryboot', partition: 3, root: '/dev/vda6' }, 'boot 5: the trial of slot B');
  const s5 = await started(b5);
  t.match(s5.firmware, { version: '2.0.0', slot: 'B', trial: true });
  const committed = await b5.guest.waitForAgentLog((l) => l.msg === 'trial boot healthy: the new slot is committed', TRIAL_TIMEOUT_MS);
  t.comment(`trial boot: power-on to committed ${Math.round(committed.at / 1000)} s`);
  await waitFor(async () => (await goodState()).devices[0]?.state === 'committed', 30_000, 'the cloud to hear of the commit');
  await waitFor(async () => {
    const r = await report(deviceId);
    return r?.firmware.version === '2.0.0' && r.update?.state === 'committed';
  }, 30_000, 'a heartbeat: 2.0.0, committed');
  t.pass('the device reports 2.0.0, committed');
  await m.stop();
  t.match(await autoboot(disk), /^\[all\][^[]*boot_partition=3/m, 'autoboot.txt now starts slot B');
  t.comment(`update test: ${Math.round((performance.now() - t0) / 1000)} s`);
});
