// Over-the-air updates through the real agent process, against the real cloud and a real RTSP
// camera: the agent asks for its target, downloads the release, has it verified and installed,
// and runs the reboot command with `tryboot`; the test then plays init (SIGTERM) and the Pi
// firmware (the next boot runs the new version as a trial). The trial commits only after a
// frame is captured and an upload acknowledged; the deployment shows the device committed, the
// heartbeat carries the update, and the boot says it was a planned reboot for the update.
//
// The line drops once half-way through the bundle (a proxy cuts the connection): the next try
// asks for the rest (Range) and the download carries on from where it stopped.
//
// RAUC and the reboot command are test doubles (shell scripts that record what they were asked):
// RAUC writes real partitions and the reboot is the Pi firmware's; the QEMU tests run those.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HeartbeatRequest } from '@vigil/protocol';
import { startTestCloud, type TestCloud } from '../helpers/cloud.js';
import { startAgentProcess, startedFields, writeAgentConfig } from '../helpers/agent-process.js';
import { startCutProxy } from '../helpers/cut-proxy.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const MARK = 'SIGNED-BY-TEST-KEY';

/** A test double of the RAUC command line: a bundle "verifies" when it starts with MARK. */
function fakeRauc(dir: string): { path: string; calls: () => string[] } {
  const log = join(dir, 'rauc-calls');
  const path = join(dir, 'rauc');
  writeFileSync(
    path,
    `#!/bin/sh
# test double of rauc: info | install | status mark-good
echo "$*" >> '${log}'
case "$1" in
info)
	for b; do :; done
	[ "$(head -c ${MARK.length} "$b")" = '${MARK}' ] || { echo "signature verification failed" >&2; exit 1; }
	echo "RAUC_MF_COMPATIBLE='vigil-rpi4'"
	echo "RAUC_MF_VERSION='2.0.0'" ;;
install) ;;
status) [ "$2" = mark-good ] || exit 2 ;;
*) exit 2 ;;
esac
`,
  );
  chmodSync(path, 0o755);
  return { path, calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) };
}

async function latestReport(cloud: TestCloud, deviceId: string): Promise<HeartbeatRequest | null> {
  return (await cloud.admin<{ report: HeartbeatRequest | null }>('GET', `/admin/v1/devices/${deviceId}`)).body.report;
}

t.test('the agent updates itself: target, download, verify, install, tryboot; the trial commits after capture and upload', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t);
  const dir = await tmpDir(t);
  const rauc = fakeRauc(dir);
  const rebootLog = join(dir, 'reboots');
  const reboot = join(dir, 'vigil-reboot');
  writeFileSync(reboot, `#!/bin/sh\necho "reboot $*" >> '${rebootLog}'\n`);
  chmodSync(reboot, 0o755);
  const keyring = join(dir, 'keyring.pem');
  writeFileSync(keyring, 'test keyring\n');
  const files = { release: join(dir, 'release'), cmdline: join(dir, 'cmdline'), bootId: join(dir, 'boot_id'), uptime: join(dir, 'uptime') };
  const bootAs = (version: string, slot: 'a' | 'b', trial: boolean, bootId: string): void => {
    writeFileSync(files.release, `VIGIL_FIRMWARE_VERSION=${version}\nVIGIL_FIRMWARE_BUILD_EPOCH=1700000000\n`);
    writeFileSync(files.cmdline, `root=/dev/mmcblk0p${slot === 'a' ? 5 : 6} vigil.slot=${slot}${trial ? ' vigil.tryboot=1' : ''}\n`);
    writeFileSync(files.bootId, `${bootId}\n`);
    // The trial's time limit counts from boot: this "boot" is a few seconds old
    writeFileSync(files.uptime, '5.00 9.00\n');
  };
  bootAs('1.0.0', 'a', false, 'boot-1');
  const dataDir = join(dir, 'data');
  const line = await startCutProxy(t, cloud.port);
  line.setRule({ match: (l) => /^GET \S+\/bundle /.test(l), afterBytes: 700_000, times: 1 });
  const config = writeAgentConfig(dataDir, {
    cloudUrl: `http://127.0.0.1:${line.port}`,
    claimCode: await cloud.claimCode('update'),
    captureIntervalMs: 1_000,
    heartbeatIntervalMs: 500,
    cameras: [{ id: 'cam1', url: camera.url() }],
    update: { rauc: rauc.path, keyring, rebootCommand: [reboot], pollMs: 300, trialTimeoutMs: 120_000 },
    system: { releaseFile: files.release, cmdlineFile: files.cmdline, trybootFile: join(dir, 'no-tryboot'), bootIdFile: files.bootId, uptimeFile: files.uptime, clockStatusCommand: [] },
  });

  // Slot A, version 1.0.0: claims itself; then a release and a deployment to it
  const a = startAgentProcess(t, config);
  await a.waitForLog((l) => l.msg === 'agent started');
  let deviceId = '';
  await waitFor(async () => {
    deviceId = (await cloud.admin<{ id: string }[]>('GET', '/admin/v1/devices')).body[0]?.id ?? '';
    return deviceId !== '';
  }, 30_000, 'the device to claim itself');
  const bundle = Buffer.concat([Buffer.from(MARK), randomBytes(2_000_000)]);
  const res = await fetch(`${cloud.url}/admin/v1/firmware/releases?version=2.0.0`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cloud.adminToken}`, 'content-type': 'application/octet-stream' },
    body: bundle,
  });
  t.equal(res.status, 201, 'release 2.0.0 uploaded');
  const dep = await cloud.admin<{ id: string }>('POST', '/admin/v1/firmware/deployments', { releaseId: ((await res.json()) as { id: string }).id, deviceIds: [deviceId], maxConcurrent: 1, failureThreshold: 1 });
  t.equal(dep.status, 201, 'deployment created');
  const deviceState = async () =>
    (await cloud.admin<{ devices: { deviceId: string; state: string; reason: string | null }[] }>('GET', `/admin/v1/firmware/deployments/${dep.body.id}`)).body.devices[0];

  await waitFor(() => existsSync(rebootLog), 60_000, 'the reboot into the trial');
  t.same(readFileSync(rebootLog, 'utf8'), 'reboot tryboot\n', 'the reboot command ran once, with tryboot');
  const calls = rauc.calls();
  t.match(calls[0], /^info --keyring=\S+keyring\.pem --output-format=shell \S+\.raucb$/, 'the signature was checked first');
  t.match(calls[1], /^install --keyring=\S+keyring\.pem \S+\.raucb$/, 'then installed');
  t.equal(calls.length, 2, 'nothing else');
  const bundleGets = line.requests.filter((r) => /\/bundle /.test(r.requestLine));
  t.equal(line.cuts.length, 1, 'the line dropped once, mid-download');
  t.equal(bundleGets.length, 2, 'two requests for the bundle');
  t.equal(bundleGets[0]?.range, null, 'the first from the start');
  const from = Number(/^bytes=(\d+)-$/.exec(bundleGets[1]?.range ?? '')?.[1]);
  t.ok(from > 600_000 && from < 700_000, `the second from where the first stopped (byte ${from})`);
  t.equal(a.logs.find((l) => l.msg === 'bundle downloaded and checked')?.resumedFrom, from, 'resumed, and the whole file checked');
  t.match(await deviceState(), { state: 'trial' }, 'the cloud knows the device went into its trial');
  await waitFor(async () => (await latestReport(cloud, deviceId))?.update?.state === 'trial', 10_000, 'a heartbeat carrying the trial');
  t.equal(a.child.exitCode, null, 'the agent waits for init to stop it');
  t.equal((await a.stop()).code, 0, 'init stops it (SIGTERM): a planned stop');
  t.equal(readFileSync(rebootLog, 'utf8'), 'reboot tryboot\n', 'and it did not reboot twice');

  // The Pi firmware boots slot B once, as a trial: version 2.0.0
  bootAs('2.0.0', 'b', true, 'boot-2');
  const b = startAgentProcess(t, config);
  const started = startedFields(await b.waitForLog((l) => l.msg === 'agent started'));
  t.same(started.lastReboot, { reason: 'planned', detail: 'update to 2.0.0' }, 'the boot says it was the update’s reboot');
  await b.waitForLog((l) => l.msg === 'trial boot healthy: the new slot is committed', 60_000);
  t.equal(rauc.calls().at(-1), 'status mark-good', 'committed through RAUC');
  await waitFor(async () => (await deviceState())?.state === 'committed', 10_000, 'the cloud to hear of the commit');
  await waitFor(async () => {
    const r = await latestReport(cloud, deviceId);
    return r?.update?.state === 'committed' && r.firmware.version === '2.0.0';
  }, 10_000, 'a heartbeat: committed, running 2.0.0');
  const frames = await cloud.allFrames();
  t.ok(frames.some((f) => f.capturedAt > Date.now() - 60_000), 'frames arrive from the new version');
  t.equal((await b.stop()).code, 0);
  const status = startAgentProcess(t, config, {}, 'status');
  await status.exited;
  const printed = JSON.parse(status.logs.map((l) => l.msg).join('\n')) as { update: { version: string; state: string } | null };
  t.match(printed.update, { version: '2.0.0', state: 'committed' }, '`vigil-agent status` shows the committed update');

  // The committed version is the running one: no update again
  bootAs('2.0.0', 'b', false, 'boot-3');
  const c = startAgentProcess(t, config);
  await c.waitForLog((l) => l.msg === 'agent started');
  const before = rauc.calls().length;
  await new Promise((r) => setTimeout(r, 1_500));
  t.equal(rauc.calls().length, before, 'nothing installed once 2.0.0 runs');
  await c.stop();
});

t.test('updates are off where the system cannot install bundles (no keyring), and the agent says so', async (t) => {
  const cloud = await startTestCloud(t);
  const dir = await tmpDir(t);
  const config = writeAgentConfig(join(dir, 'data'), {
    cloudUrl: cloud.url,
    claimCode: await cloud.claimCode('update-off'),
    update: { rauc: '/bin/true', keyring: join(dir, 'absent-keyring.pem') },
    system: { clockStatusCommand: [] },
  });
  const agent = startAgentProcess(t, config);
  const off = await agent.waitForLog((l) => l.msg === 'over-the-air updates off: this system cannot install bundles');
  t.match((off as unknown as { missing: string[] }).missing, [/absent-keyring\.pem$/]);
  await agent.stop();
});
