// The QEMU test image (board/qemu, docs/system-tests.md) on QEMU's aarch64 virt machine under
// emulation (TCG): times from power-on (QEMU started) to the agent started, to its first
// committed capture and to its first upload acknowledged by the cloud (median of 5 boots of a
// claimed device, each ended by an orderly power-off); the sizes of the image, its root
// filesystem and the agent executable (raw, and alone in a squashfs compressed as Buildroot's
// BR2_TARGET_ROOTFS_SQUASHFS4_ZSTD does); and the agent's resident memory inside the guest.
// Emulated times are not a Pi's: they compare builds of this image on this machine.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../cloud/dist/config.js';
import { startCloud } from '../cloud/dist/main.js';
import { percentile, report, startRtsp, stop } from './lib.ts';
import { boot, buildImage, firstAt, forwardTo, guestAgentConfig, TOP, type Guest } from '../test/system/qemu.ts';
import { makeDisk } from '../test/system/disk.ts';

const BOOTS = 5;
const RSS_SETTLE_MS = 10_000;
const mb = (bytes: number) => bytes / 1024 / 1024;

const teardowns: (() => unknown)[] = [];
const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) };
const cleanup = async (): Promise<void> => {
  for (const fn of teardowns.reverse()) await fn();
};

try {
  const image = await buildImage();
  const sizes = image.sizes;
  report('qemu_image_size', mb(Number(sizes.image_bytes)), 'MB');
  report('qemu_image_allocated', mb(Number(sizes.image_allocated_bytes)), 'MB');
  report(`qemu_rootfs_squashfs_zstd${sizes.squashfs_level}`, mb(Number(sizes.rootfs_squashfs_bytes)), 'MB');
  report('qemu_rootfs_unpacked', mb(Number(sizes.rootfs_unpacked_bytes)), 'MB');

  // The agent alone in a squashfs, zstd at mksquashfs' default level (Buildroot's setting)
  const agentDir = join(TOP, 'build/agent-bin/linux-arm64');
  const sq = mkdtempSync(join(tmpdir(), 'vigil-bench-sq-'));
  mkdirSync(join(sq, 'root'));
  for (const f of ['vigil-agent', 'better_sqlite3.node']) copyFileSync(join(agentDir, f), join(sq, 'root', f));
  execFileSync('mksquashfs', [join(sq, 'root'), join(sq, 'agent.squashfs'), '-noappend', '-all-root', '-comp', 'zstd', '-quiet', '-no-progress'], {
    stdio: 'ignore',
  });
  report('qemu_agent_bin_raw', mb(Number(sizes.agent_bytes)), 'MB');
  report('qemu_agent_bin_squashfs_zstd', mb(statSync(join(sq, 'agent.squashfs')).size), 'MB');
  rmSync(sq, { recursive: true, force: true });

  const ADMIN = 'bench-admin-token-0123456789abcdef';
  const cloudDir = mkdtempSync(join(tmpdir(), 'vigil-bench-qemu-cloud-'));
  t.teardown(() => rmSync(cloudDir, { recursive: true, force: true }));
  const cloud = await startCloud(loadConfig({ env: {}, overrides: { port: 0, dataDir: cloudDir, adminToken: ADMIN, logLevel: 'silent' } }));
  t.teardown(() => cloud.close());
  const { code } = (await (
    await fetch(`http://127.0.0.1:${cloud.port}/admin/v1/claim-codes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ site: 'bench' }),
    })
  ).json()) as { code: string };
  const camera = await startRtsp(['/cam1'], '640x360');
  t.teardown(() => stop(camera.child));
  const cameraPort = Number(new URL(camera.base).port);
  const disk = await makeDisk(t, image.image, {
    'vigil/agent.json': JSON.stringify(guestAgentConfig(code, ['/cam1'], { captureIntervalMs: 5000 })),
    'vigil/board-serial': '10000000bench0q1\n',
  });
  const forward = forwardTo(cloud.port, cameraPort);

  const powerOff = async (g: Guest): Promise<void> => {
    await g.send('poweroff');
    const exit = await Promise.race([g.exited, new Promise<null>((r) => setTimeout(() => r(null), 60_000))]);
    if (!exit) {
      await g.kill();
      throw new Error('the guest did not power off');
    }
  };
  const untilFirstUpload = (g: Guest) => g.waitForAgentLog((l) => l.msg === 'uploaded', 120_000);

  // First boot: the device claims itself (not counted: a device does this once)
  const first = boot(t, disk, { forward, name: 'bench-claim' });
  await untilFirstUpload(first);
  await powerOff(first);

  const started: number[] = [];
  const captured: number[] = [];
  const uploaded: number[] = [];
  let rss = '';
  for (let i = 0; i < BOOTS; i++) {
    const g = boot(t, disk, { forward, name: `bench-${i + 1}` });
    await untilFirstUpload(g);
    started.push(firstAt(g, (l) => l.msg === 'agent started')!);
    captured.push(firstAt(g, (l) => l.msg === 'capture queued')!);
    uploaded.push(firstAt(g, (l) => l.msg === 'uploaded')!);
    if (i === BOOTS - 1) {
      await new Promise((r) => setTimeout(r, RSS_SETTLE_MS));
      const from = g.lines.at(-1)!.at;
      await g.send('rss');
      rss = (await g.waitForLine(/^SYSTEST_RSS /, 30_000, from)).text;
    }
    await powerOff(g);
  }
  report('qemu_boot_to_agent_started_ms', percentile(started, 50), 'ms');
  report('qemu_boot_to_first_capture_ms', percentile(captured, 50), 'ms');
  report('qemu_boot_to_first_upload_ms', percentile(uploaded, 50), 'ms');
  const kb = (k: string) => Number(new RegExp(`${k}=(\\d+)`).exec(rss)?.[1] ?? NaN);
  report('qemu_agent_rss', kb('rss_kb') / 1024, 'MB');
  report('qemu_agent_peak_rss', kb('hwm_kb') / 1024, 'MB');
} finally {
  await cleanup();
}
