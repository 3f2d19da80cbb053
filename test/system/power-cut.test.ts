// System test: power cuts. QEMU is SIGKILLed at random moments while the agent in the guest
// captures and uploads, and booted again, round after round. After every cut: the data
// partition recovers (journal replay) to a clean filesystem, the next boot mounts it without
// re-creating it, the agent's queue passes integrity_check, and no capture the agent had
// committed (logged "capture queued" on the serial console, or found in its database) is
// lost. A last boot drains the queue: every committed capture is in the cloud exactly once.
//
// What a SIGKILL of QEMU models: the guest's page cache and in-flight requests are lost, the
// host's copy of every write QEMU completed survives. A real SD card can also drop data from
// its own cache or tear a sector; that needs hardware (docs/system-tests.md).
import t from 'tap';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CameraSummary } from '@vigil/protocol';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { waitFor } from '../helpers/wait.js';
import { agentDbSnapshot, cloudKeys, frameKey } from '../helpers/frames.js';
import {
  BOOT_TIMEOUT_MS,
  boot,
  buildImage,
  forwardTo,
  guestAgentConfig,
  qemuLock,
  type Guest,
} from './qemu.js';
import { ROOTFS_A_PARTITION, dataAfterRecovery, fsckData, makeDisk, partitionSha256 } from './disk.js';

const ROUNDS = Number(process.env.VIGIL_POWER_CUT_ROUNDS ?? 5);
/**
 * The cut comes this long after the boot's first committed capture. Under emulation a capture
 * takes ~5 s (ffmpeg), so the window spans that capture's uploads, the backlog earlier cuts
 * left, the next capture in flight and its commit.
 */
const CUT_MIN_MS = 0;
const CUT_MAX_MS = 7000;
const CAPTURE_INTERVAL_MS = 2000;

t.setTimeout(20 * 60_000);

t.test(`QEMU power cuts: ${ROUNDS} rounds of SIGKILL during capture and upload`, async (t) => {
  const image = await buildImage();
  await qemuLock(t);
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1'] });
  const config = guestAgentConfig(await cloud.claimCode('qemu-power-cut'), ['/cam1'], { captureIntervalMs: CAPTURE_INTERVAL_MS });
  const disk = await makeDisk(t, image.image, {
    'vigil/agent.json': JSON.stringify(config, null, 2),
    'vigil/board-serial': '10000000c0ffee02\n',
  });
  const rootBefore = await partitionSha256(disk, ROOTFS_A_PARTITION);
  const forward = forwardTo(cloud.port, camera.port);
  let keyById = new Map<string, string>();
  const cloudNow = async (): Promise<{ keys: Set<string>; duplicates: string[] }> => {
    keyById = new Map((await cloud.admin<CameraSummary[]>('GET', '/admin/v1/cameras')).body.map((c) => [c.id, c.key]));
    return cloudKeys(await cloud.allFrames(), keyById);
  };
  let guest: Guest | undefined;
  t.teardown(() => {
    if (!t.passing() && guest) t.comment(`serial console of the last boot (last lines):\n${guest.tail(60)}`);
  });

  /** Committed before the cut: logged after the commit, or found in the database afterwards. */
  const reached = new Set<string>();
  const queuedIn = (g: Guest): string[] =>
    g.agentLogs.filter((l) => l.msg === 'capture queued').flatMap((l) => ['compressed', 'original'].map((v) => frameKey(l.camera as string, l.capturedAt as number, v)));
  const pendingJournal: boolean[] = [];

  /** Checks the boot's report of /data (S03vigil-data and board/qemu's SYSTEST lines). */
  const checkDataMounted = async (g: Guest, round: string): Promise<void> => {
    const data = await g.waitForLine(/^SYSTEST_DATA /);
    t.match(data.text, /^SYSTEST_DATA ext4 rw,\S* (ok|repaired)$/, `${round}: /data mounted read-write, checked, not re-created (${data.text.split(' ').at(-1)})`);
    t.equal((await g.waitForLine(/^SYSTEST_DATA_WRITE /)).text, 'SYSTEST_DATA_WRITE ok', `${round}: /data takes writes`);
  };

  for (let r = 1; r <= ROUNDS; r++) {
    const round = `round ${r}`;
    guest = boot(t, disk, { forward, name: `power-cut-${r}` });
    await checkDataMounted(guest, round);
    const first = await guest.waitForAgentLog((l) => l.msg === 'capture queued', BOOT_TIMEOUT_MS);
    const delay = CUT_MIN_MS + Math.random() * (CUT_MAX_MS - CUT_MIN_MS);
    await new Promise((res) => setTimeout(res, delay));
    await guest.kill();
    const logged = queuedIn(guest);
    const uploads = guest.agentLogs.filter((l) => l.msg === 'uploaded').length;
    t.comment(`${round}: cut ${(delay / 1000).toFixed(1)} s after the first capture of the boot (at ${(first.at / 1000).toFixed(1)} s): ${logged.length / 2} captures committed, ${uploads} uploads acknowledged`);
    t.notOk(guest.lines.some((l) => /EXT4-fs error/.test(l.text)), `${round}: no ext4 error in the kernel log`);

    // The host's view of the card right after the cut, and after the recovery the next boot does
    pendingJournal.push((await fsckData(disk)).journalPending);
    const rec = await dataAfterRecovery(disk, join(disk.dir, `round-${r}`));
    t.ok(rec.repair.rc <= 1, `${round}: e2fsck -fy recovers the data partition (rc ${rec.repair.rc})`, { output: rec.repair.out });
    t.equal(rec.check.rc, 0, `${round}: the recovered data partition is clean (e2fsck -fn)`, { output: rec.check.out });
    const snap = agentDbSnapshot(rec.vigilDir);
    t.equal(snap.integrity, 'ok', `${round}: PRAGMA integrity_check`);
    t.equal(snap.deadLetters, 0, `${round}: no dead letters`);
    const { keys } = await cloudNow();
    const lost = logged.filter((k) => !keys.has(k) && !snap.queued.has(k));
    t.same(lost, [], `${round}: every capture committed before the cut is still queued or already in the cloud`);
    for (const k of [...logged, ...snap.queued]) reached.add(k);
  }
  t.comment(`host e2fsck right after the cuts: ${pendingJournal.filter(Boolean).length} of ${ROUNDS} had a journal to replay`);
  t.ok(reached.size >= 2 * ROUNDS, `${reached.size / 2} captures were committed before the cuts`);

  // The last boot, with the camera gone: nothing new is captured, the queue drains.
  await camera.stop();
  guest = boot(t, disk, { forward, name: 'power-cut-final' });
  await checkDataMounted(guest, 'final boot');
  await waitFor(
    async () => {
      const { keys } = await cloudNow();
      return [...reached].every((k) => keys.has(k));
    },
    2 * BOOT_TIMEOUT_MS,
    'every committed capture in the cloud',
    1000,
  );
  const drained = guest.lines.at(-1)!.at;
  await guest.send('poweroff');
  await guest.waitForLine(/^SYSTEST_POWEROFF/, 30_000, drained);
  const exit = await Promise.race([guest.exited, new Promise<null>((r) => setTimeout(() => r(null), 60_000))]);
  t.same(exit, { code: 0, signal: null }, 'the last boot powered off in order');

  const { keys, duplicates } = await cloudNow();
  t.same(duplicates, [], 'no capture recorded twice in the cloud');
  t.same([...reached].filter((k) => !keys.has(k)), [], `all ${reached.size / 2} committed captures (${reached.size} frames) are in the cloud`);
  const fsck = await fsckData(disk);
  t.equal(fsck.rc, 0, 'e2fsck -fn on /data after the orderly power-off is clean', { output: fsck.out });
  const end = await dataAfterRecovery(disk, join(disk.dir, 'final'));
  const snap = agentDbSnapshot(end.vigilDir);
  t.equal(snap.integrity, 'ok', 'PRAGMA integrity_check at the end');
  t.same([...snap.queued], [], 'the queue is empty');
  const spool = join(end.vigilDir, 'spool');
  const left = existsSync(spool) ? readdirSync(spool, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name)) : [];
  t.same(left, [], 'no orphan spool files');
  t.equal(await partitionSha256(disk, ROOTFS_A_PARTITION), rootBefore, 'rootfs A is bit-for-bit unchanged after every cut');
  t.comment(`agent counters at the end: ${JSON.stringify(snap.counters)}`);
});
