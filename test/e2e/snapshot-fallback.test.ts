// The capture path end to end, with the real agent process, the camera simulator's snapshot
// endpoint and the real cloud: a camera whose RTSP is dead is captured through its snapshot
// URI after three RTSP failures (the inventory says so); when the camera starts answering
// HTML instead of a JPEG, each capture is rejected and counted, and the heartbeat says why;
// a second camera with a wrong password shows a clear per-camera error without a retry storm.
import t from 'tap';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { startOnvifSim } from '../../tools/onvif-sim/sim.ts';
import { startTestCloud } from '../helpers/cloud.js';
import { startAgentProcess, writeAgentConfig } from '../helpers/agent-process.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

interface CameraView {
  id: string;
  key: string;
  frames: number;
  inventory: { capturePath: string; lastError: string | null } | null;
}
interface DeviceView {
  id: string;
}
interface DeviceDetail {
  report: { cameras: { camera: string; state: string; failures: number; lastError: string | null }[] } | null;
}

/** A port where nothing listens: RTSP to it fails at once. */
async function deadPort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

t.test('RTSP dead: the snapshot URI; HTML instead of a JPEG: rejected and counted; wrong password: a per-camera error, no storm', async (t) => {
  const cloud = await startTestCloud(t);
  const cam = await startOnvifSim({ username: 'admin', password: 'secret', serial: '00042' });
  const locked = await startOnvifSim({ username: 'admin', password: 'other', serial: '00043' });
  t.teardown(() => Promise.all([cam.close(), locked.close()]));
  const dead = `rtsp://127.0.0.1:${await deadPort()}/stream`;
  const dataDir = await tmpDir(t);
  const agent = startAgentProcess(
    t,
    writeAgentConfig(dataDir, {
      cloudUrl: cloud.url,
      claimCode: await cloud.claimCode('snapshot'),
      captureIntervalMs: 1000,
      captureTimeoutMs: 10_000,
      rtspTimeoutMs: 2000,
      heartbeatIntervalMs: 500,
      health: { intervalMs: 500 },
      cameras: [
        { id: 'door', url: dead, snapshotUrl: cam.snapshotUrl, username: 'admin', password: 'secret' },
        { id: 'yard', snapshotUrl: locked.snapshotUrl, capturePath: 'snapshot', username: 'admin', password: 'wrong' },
      ],
    }),
  );
  await agent.waitForLog((l) => l.msg === 'device claimed', 20_000);
  const cameras = async () => (await cloud.admin<CameraView[]>('GET', '/admin/v1/cameras')).body;
  const door = async () => (await cameras()).find((c) => c.key === 'door');

  const fallback = await agent.waitForLog((l) => l.msg === 'RTSP keeps failing; capturing through the snapshot URI', 30_000);
  t.equal(fallback.failures, 3, 'after three RTSP failures');
  await waitFor(async () => ((await door())?.frames ?? 0) >= 4, 30_000, 'snapshot captures in the cloud', 250);
  await waitFor(async () => (await door())?.inventory?.capturePath === 'snapshot', 30_000, 'the inventory to say snapshot', 250);
  t.pass('captured through the snapshot URI, and the inventory says so');

  const device = (await cloud.admin<DeviceView[]>('GET', '/admin/v1/devices')).body[0]!;
  const report = async () => (await cloud.admin<DeviceDetail>('GET', `/admin/v1/devices/${device.id}`)).body.report?.cameras ?? [];
  // A capture that started before this may still land (and its upload may come later); none
  // that started after it may.
  const switchedAt = Date.now();
  cam.setSnapshotMode('html');
  await waitFor(async () => (await report()).some((c) => c.camera === 'door' && c.failures >= 3 + 3 && /SNAPSHOT_NOT_JPEG/.test(c.lastError ?? '')), 30_000, 'HTML snapshots counted in the heartbeat', 250);
  const doorId = (await door())!.id;
  const late = (await cloud.allFrames()).filter((f) => f.cameraId === doorId && f.capturedAt >= switchedAt);
  t.same(late, [], 'no HTML page became a frame');

  const yard = (await report()).find((c) => c.camera === 'yard');
  t.match(yard?.lastError, /^SNAPSHOT_AUTH_FAILED: .*refused the credentials/, 'the wrong password is a clear error of that camera');
  t.equal(yard?.state, 'failing');
  const ticks = agent.logs.filter((l) => l.camera === 'yard' && l.msg === 'capture failed').length;
  const requests = locked.requests.filter((r) => r.op === 'snapshot').length;
  t.ok(requests <= 2 * (ticks + 1), `no retry storm: ${requests} requests for ${ticks} failed captures (a challenge and one answer each)`);
  t.same((await agent.stop()).code, 0);
});
