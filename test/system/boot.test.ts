// System test: the QEMU test image (the Pi image's overlay, init scripts, agent executable and
// card layout on Debian's arm64 kernel) boots on QEMU's aarch64 virt machine. The root is
// read-only, /data is writable, init starts the agent and starts it again after a SIGKILL, and
// the agent captures from the RTSP test camera on the host and uploads to the real cloud on
// the host through QEMU's user networking. The card's vigil.txt (p1) gives the cloud, the claim
// code and a static address; the agent claims itself and erases the code from the card. An
// orderly power-off leaves /data clean.
import t from 'tap';
import { join } from 'node:path';
import type { CameraSummary } from '@vigil/protocol';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { startedFields } from '../helpers/agent-process.js';
import { waitFor } from '../helpers/wait.js';
import { agentDbSnapshot, cloudKeys } from '../helpers/frames.js';
import {
  BOOT_TIMEOUT_MS,
  GUEST_CLOUD,
  boot,
  buildImage,
  forwardTo,
  guestAgentConfig,
  qemuLock,
} from './qemu.js';
import { ROOTFS_A_PARTITION, dataAfterRecovery, fsckData, makeDisk, partitionSha256 } from './disk.js';
import { readCardFile, writeCardFile } from './card.js';

t.setTimeout(15 * 60_000);

t.test('QEMU: boot, read-only root, /data, the agent under init, capture and upload', async (t) => {
  const image = await buildImage();
  t.comment(`image ${image.image}: rootfs ${image.sizes.rootfs_squashfs_bytes} bytes squashfs (built or checked in ${Math.round(image.buildMs)} ms)`);
  await qemuLock(t);
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1'] });
  // The cloud, the claim code and the network come only from the card (vigil.txt on p1, as
  // `make flash CLAIM= CLOUD=` writes it): the agent's config names the image's placeholder cloud,
  // the test camera and the board serial (QEMU's virt machine has none).
  const code = await cloud.claimCode('qemu-boot');
  const { claimCode: _, ...config } = guestAgentConfig(code, ['/cam1'], { captureIntervalMs: 4000, cloudUrl: 'https://cloud.vigil.invalid' });
  const disk = await makeDisk(t, image.image, {
    'vigil/agent.json': JSON.stringify(config, null, 2),
    'vigil/board-serial': '10000000c0ffee01\n',
  });
  const cardFile = `# written by hand\r\nCLOUD_URL=http://${GUEST_CLOUD.addr}\r\nCLAIM_CODE=${code}\r\nADDRESS=10.0.2.15/24\r\nGATEWAY=10.0.2.2\r\nDNS=10.0.2.3\r\n`;
  await writeCardFile(disk.path, 'vigil.txt', '\uFEFF' + cardFile);
  const rootBefore = await partitionSha256(disk, ROOTFS_A_PARTITION);

  const guest = boot(t, disk, { forward: forwardTo(cloud.port, camera.port), name: 'boot' });
  t.teardown(() => {
    if (t.passing()) return;
    t.comment(`serial console (last lines):\n${guest.tail(60)}`);
  });

  // What init's scripts and the test layer report (board/qemu/rootfs-overlay)
  const root = await guest.waitForLine(/^SYSTEST_ROOT /);
  t.match(root.text, /^SYSTEST_ROOT squashfs ro[, ]/, 'the root is the squashfs slot, mounted read-only');
  t.equal((await guest.waitForLine(/^SYSTEST_ROOT_WRITE /)).text, 'SYSTEST_ROOT_WRITE EROFS', 'a write to / fails with EROFS');
  const data = await guest.waitForLine(/^SYSTEST_DATA /);
  t.match(data.text, /^SYSTEST_DATA ext4 rw,\S* ok$/, '/data is the ext4 partition, read-write, checked clean');
  t.match(data.text, /\bnodev\b.*\bnoexec\b/, '/data is mounted nodev and noexec (S03vigil-data)');
  t.equal((await guest.waitForLine(/^SYSTEST_DATA_WRITE /)).text, 'SYSTEST_DATA_WRITE ok', '/data takes writes');
  t.ok(guest.lines.some((l) => l.text.includes('root=/dev/vda5')), 'booted slot A (p5) as autoboot.txt and cmdline.txt say');
  t.equal((await guest.waitForLine(/^SYSTEST_CARD /)).text, 'SYSTEST_CARD present', "S05vigil-card copied the card's vigil.txt");
  t.equal((await guest.waitForLine(/^SYSTEST_NET /)).text, 'SYSTEST_NET vigil 10.0.2.15/24', "eth0 has the card's static address");

  // The agent, started by init, claims itself, captures and uploads
  const started = await guest.waitForAgentLog((l) => l.msg === 'agent started');
  t.comment(`agent started ${(started.at / 1000).toFixed(1)} s after power-on`);
  t.same(startedFields(started).lastReboot, { reason: 'first_boot', detail: null }, 'a fresh card: the first boot');
  t.equal(startedFields(started).firmware.slot, 'A', 'the agent reads its slot from the kernel command line');
  t.match(startedFields(started).firmware.version, /\S/, 'and the firmware version from /etc/vigil/release');
  // The agent feeds the watchdog keeper through its heartbeat file (docs/firmware.md)
  await waitFor(async () => {
    // +1: not the answer to the previous try
    const sent = guest.lines.at(-1)!.at + 1;
    await guest.send('run cat /run/vigil/heartbeat');
    return /^SYSTEST_OUT ok \d+$/.test((await guest.waitForLine(/^SYSTEST_OUT /, 30_000, sent)).text);
  }, BOOT_TIMEOUT_MS, 'the agent to feed the keeper', 1000);
  t.pass('the agent writes the keeper\'s heartbeat file');
  // The agent is init's own child (the wrapper exec'd it), running the packaged executable
  const asked = guest.lines.at(-1)!.at;
  await guest.send(`run p=$(cat /var/run/vigil-agent.pid); echo "ppid=$(awk '$1 == "PPid:" { print $2 }' /proc/$p/status) exe=$(readlink /proc/$p/exe)"`);
  const proc = await guest.waitForLine(/^SYSTEST_OUT ppid=/, 30_000, asked);
  t.equal(proc.text, 'SYSTEST_OUT ppid=1 exe=/usr/bin/vigil-agent', 'the agent runs /usr/bin/vigil-agent as a child of init (pid 1)');
  const claimed = await guest.waitForAgentLog((l) => l.msg === 'device claimed');
  t.match(claimed, { source: 'card', site: 'qemu-boot' }, "claimed with the card's code, against the card's cloud");
  await guest.waitForAgentLog((l) => l.msg === 'used claim code erased from the card');
  await waitFor(
    async () => (await cloud.allFrames()).length >= 2,
    BOOT_TIMEOUT_MS,
    'the first capture (both variants) in the cloud',
    500,
  );
  const firstUpload = await guest.waitForAgentLog((l) => l.msg === 'uploaded');
  t.comment(`first upload acknowledged ${(firstUpload.at / 1000).toFixed(1)} s after power-on`);

  // init starts the agent again after it is killed (BusyBox init respawn + the wrapper)
  const killSent = guest.lines.at(-1)!.at;
  await guest.send('kill-agent');
  const killed = await guest.waitForLine(/^SYSTEST_KILLED /, 30_000, killSent);
  t.match(killed.text, /^SYSTEST_KILLED pid=\d+$/, 'the agent was running and was SIGKILLed');
  const restarted = await guest.waitForAgentLog((l) => l.msg === 'agent started', BOOT_TIMEOUT_MS, killed.at);
  t.comment(`agent running again ${((restarted.at - killed.at) / 1000).toFixed(1)} s after the kill`);
  t.equal(startedFields(restarted).lastExit?.reason, 'killed', 'the restarted agent knows its predecessor was killed');
  t.same(startedFields(restarted).lastReboot, { reason: 'first_boot', detail: null }, 'within the same boot');
  const framesBefore = (await cloud.allFrames()).length;
  await waitFor(async () => (await cloud.allFrames()).length >= framesBefore + 2, BOOT_TIMEOUT_MS, 'uploads after the restart', 500);
  t.pass('captures reach the cloud after the restart');

  // An orderly power-off: rcK stops the agent and unmounts /data; QEMU exits by itself
  await guest.send('poweroff');
  await guest.waitForLine(/^SYSTEST_POWEROFF/, 30_000);
  const exit = await Promise.race([guest.exited, new Promise<null>((r) => setTimeout(() => r(null), 60_000))]);
  t.same(exit, { code: 0, signal: null }, 'the guest powered off and QEMU exited');
  // rcK's S99vigil-agent sends SIGTERM; the agent finishes and exits before /data goes
  const stopping = await guest.waitForAgentLog((l) => l.msg === 'stopping', 1000, restarted.at);
  t.equal(stopping.sig, 'SIGTERM', 'S99vigil-agent stopped the agent with SIGTERM');
  t.ok(
    guest.agentLogs.some((l) => l.msg === 'agent stopped' && l.at > stopping.at),
    'the agent stopped gracefully before the power-off',
  );

  // From the host: the code is gone from the card, every other line kept
  t.equal(await readCardFile(disk.path, 'vigil.txt'), '\uFEFF' + cardFile.replace(/CLAIM_CODE=.*\r\n/, ''), 'vigil.txt on p1 without its claim code');
  // /data is clean, the root slot untouched, the queue consistent with the cloud
  const fsck = await fsckData(disk);
  t.equal(fsck.rc, 0, 'e2fsck -fn on /data after power-off is clean', { output: fsck.out });
  t.equal(await partitionSha256(disk, ROOTFS_A_PARTITION), rootBefore, 'rootfs A is bit-for-bit unchanged');
  const after = await dataAfterRecovery(disk, join(disk.dir, 'after'));
  const snap = agentDbSnapshot(after.vigilDir);
  t.equal(snap.integrity, 'ok', 'PRAGMA integrity_check of the agent database');
  const keyById = new Map((await cloud.admin<CameraSummary[]>('GET', '/admin/v1/cameras')).body.map((c) => [c.id, c.key]));
  const frames = await cloud.allFrames();
  const { keys, duplicates } = cloudKeys(frames, keyById);
  t.same(duplicates, [], 'no frame recorded twice');
  t.equal(keys.size + snap.queued.size, snap.counters.frames_enqueued, 'cloud + still queued = everything the agent enqueued');
  for (const k of snap.queued) t.notOk(keys.has(k), `still-queued ${k} is not also in the cloud`);
});
