// Over-the-air updates of the QEMU test image (board/qemu, docs/system-tests.md), measured:
//   - the size of a signed bundle, and of the bundle for a one-line agent change (a log
//     message of the same length changed in the built executable, which holds the agent's code
//     as text; the two bundles' versions differ too, in /etc/vigil/release): RAUC bundles carry
//     whole slot images, so both are the full size; the bytes of the root filesystem that
//     differ between the two (in 4 KiB blocks) are what a block-based delta would have to move;
//   - one update done by the agent in the guest (TCG, 2 cores): the download of the bundle from
//     the cloud on the host, RAUC's install (the payload check, then both slots written), and
//     the reboot into the trial until the commit (rauc status mark-good after a capture and an
//     upload acknowledged).
// Emulated times are not a Pi's: they compare builds of this image on this machine.
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../cloud/dist/config.js';
import { startCloud } from '../cloud/dist/main.js';
import { report, startRtsp, stop } from './lib.ts';
import { buildBundle, buildImage, forwardTo, guestAgentConfig, TOP, type TimedAgentLog } from '../test/system/qemu.ts';
import { makeDisk } from '../test/system/disk.ts';
import { machine } from '../test/system/machine.ts';

const MB = 1024 * 1024;
const BLOCK = 4096;
/** The agent's line changed for the one-line bundle: the same length, so nothing else moves. */
const LINE = 'trial boot healthy: the new slot is committed';
const CHANGED = 'trial boot healthy: this new slot is committed';

const teardowns: (() => unknown)[] = [];
const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) };
const cleanup = async (): Promise<void> => {
  for (const fn of teardowns.reverse()) await fn();
};

/** Bytes in 4 KiB blocks that differ between two files (a longer file's tail counts whole). */
function changedBytes(a: string, b: string): number {
  const [fa, fb] = [openSync(a, 'r'), openSync(b, 'r')];
  const [ba, bb] = [Buffer.alloc(BLOCK), Buffer.alloc(BLOCK)];
  let changed = 0;
  for (let off = 0; ; off += BLOCK) {
    const na = readSync(fa, ba, 0, BLOCK, off);
    const nb = readSync(fb, bb, 0, BLOCK, off);
    if (na === 0 && nb === 0) break;
    if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) changed += Math.max(na, nb);
  }
  closeSync(fa);
  closeSync(fb);
  return changed;
}

try {
  const image = await buildImage();
  const work = mkdtempSync(join(tmpdir(), 'vigil-bench-ota-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  // The one-line change, laid over the rootfs as /usr/bin/vigil-agent
  const agent = join(TOP, 'build/agent-bin/linux-arm64/vigil-agent');
  const exe = readFileSync(agent);
  const at = exe.indexOf(LINE);
  if (at < 0 || exe.indexOf(LINE, at + 1) >= 0) throw new Error(`"${LINE}" is not once in ${agent}`);
  exe.write(CHANGED, at, 'latin1');
  const extra = join(work, 'one-line');
  mkdirSync(join(extra, 'usr/bin'), { recursive: true });
  writeFileSync(join(extra, 'usr/bin/vigil-agent'), exe);
  chmodSync(join(extra, 'usr/bin/vigil-agent'), 0o755);

  const base = await buildBundle('9.0.0-bench');
  const oneLine = await buildBundle('9.0.1-bench', extra);
  report('ota_bundle_size', statSync(base.path).size / MB, 'MB');
  report('ota_bundle_size_one_line_agent_change', statSync(oneLine.path).size / MB, 'MB');
  report('ota_bundle_build_ms', Math.round(base.buildMs), 'ms');
  const rootfs = (bundle: string, name: string): string => {
    const out = join(work, name);
    execFileSync('unsquashfs', ['-q', '-n', '-d', out, bundle, 'rootfs.squashfs'], { stdio: 'ignore' });
    return join(out, 'rootfs.squashfs');
  };
  const [ra, rb] = [rootfs(base.path, 'a'), rootfs(oneLine.path, 'b')];
  report('ota_rootfs_squashfs_size', statSync(ra).size / MB, 'MB');
  report('ota_rootfs_changed_one_line_agent_change', changedBytes(ra, rb) / MB, 'MB');

  // One update in the guest, done by the agent
  const cloudDir = mkdtempSync(join(tmpdir(), 'vigil-bench-ota-cloud-'));
  t.teardown(() => rmSync(cloudDir, { recursive: true, force: true }));
  const ADMIN = 'bench-admin-token-0123456789abcdef';
  const cloud = await startCloud(loadConfig({ env: {}, overrides: { port: 0, dataDir: cloudDir, adminToken: ADMIN, logLevel: 'silent' } }));
  t.teardown(() => cloud.close());
  const admin = async <T>(method: string, path: string, body?: unknown, raw?: Buffer): Promise<T> => {
    const res = await fetch(`http://127.0.0.1:${cloud.port}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': raw ? 'application/octet-stream' : 'application/json' },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const { code } = await admin<{ code: string }>('POST', '/admin/v1/claim-codes', { site: 'bench' });
  const camera = await startRtsp(['/cam1'], '640x360');
  t.teardown(() => stop(camera.child));
  const config = guestAgentConfig(code, ['/cam1'], { captureIntervalMs: 5000, update: { pollMs: 2000 } });
  // A 4 GiB card: /data grows to its end at first boot, room for the bundle
  const disk = await makeDisk(t, image.image, { 'vigil/agent.json': JSON.stringify(config), 'vigil/board-serial': '10000000bench0a1\n' }, { sizeBytes: 4 * 1024 ** 3 });
  const m = await machine(t, disk, { forward: forwardTo(cloud.port, Number(new URL(camera.base).port)), name: 'bench-ota' });
  const a = m.current().guest;
  await a.waitForAgentLog((l) => l.msg === 'uploaded', 180_000);
  const [device] = await admin<{ id: string }[]>('GET', '/admin/v1/devices');
  const rel = await admin<{ id: string }>('POST', '/admin/v1/firmware/releases?version=9.0.0-bench', undefined, readFileSync(base.path));
  await admin('POST', '/admin/v1/firmware/deployments', { releaseId: rel.id, deviceIds: [device!.id], maxConcurrent: 1, failureThreshold: 1 });
  const log = (msg: string) => (l: TimedAgentLog) => l.msg === msg;
  const downloading = await a.waitForAgentLog(log('update downloading'), 120_000);
  const downloaded = await a.waitForAgentLog(log('bundle downloaded and checked'), 15 * 60_000);
  const installing = await a.waitForAgentLog(log('update installing'), 120_000);
  const installed = await a.waitForAgentLog(log('update trial'), 15 * 60_000);
  const trial = await m.nextBoot(1, 180_000);
  const committed = await trial.guest.waitForAgentLog(log('trial boot healthy: the new slot is committed'), 600_000);
  report('ota_qemu_download_ms', Math.round(downloaded.at - downloading.at), 'ms');
  report('ota_qemu_download_mb_per_s', statSync(base.path).size / MB / ((downloaded.at - downloading.at) / 1000), 'MB/s');
  report('ota_qemu_install_ms', Math.round(installed.at - installing.at), 'ms');
  // From the reboot asked (the old boot's clock) to the commit (the trial boot's clock): the
  // old boot's shutdown, plus the new boot's power-on to commit
  const shutdown = a.lines.at(-1)!.at - installed.at;
  report('ota_qemu_reboot_to_commit_ms', Math.round(shutdown + committed.at), 'ms');
  report('ota_qemu_trial_power_on_to_commit_ms', Math.round(committed.at), 'ms');
  await m.stop();
} finally {
  await cleanup();
}
