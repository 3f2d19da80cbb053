// Outage drill: the cloud is down for "47 minutes" (the longest real incident) on a clock
// running 300× fast, while capture continues. When it returns, the backlog drains
// compressed-first and the cloud ends with exactly one record per capture.
import t from 'tap';
import type { CameraSummary } from '@vigil/protocol';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { startAgentProcess, writeAgentConfig, type AgentLogLine } from '../helpers/agent-process.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { agentDbSnapshot, cloudKeys, frameKey } from '../helpers/frames.js';

const SCALE = 300;
const OUTAGE_MS = (47 * 60_000) / SCALE;

t.test('47-minute backend outage: capture continues, backlog drains compressed-first, exactly once', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1', '/cam2:snow'] });
  const dataDir = await tmpDir(t);
  const config = writeAgentConfig(dataDir, {
    cloudUrl: cloud.url,
    claimCode: await cloud.claimCode('outage'),
    clockScale: SCALE,
    // 30 s and 120 s on the agent's clock: 100 ms and 400 ms of real time at this scale.
    captureIntervalMs: 30_000,
    captureTimeoutMs: 3_000_000,
    rtspTimeoutMs: 3_000_000,
    cameras: [
      { id: 'cam1', url: camera.url('/cam1') },
      { id: 'cam2', url: camera.url('/cam2') },
    ],
  });
  const agent = startAgentProcess(t, config);
  const queued = (l: AgentLogLine) => l.msg === 'capture queued';
  await waitFor(async () => (await cloud.allFrames()).length >= 4, 30_000, 'frames before the outage', 200);

  await cloud.close();
  const downAt = Date.now();
  const before = agent.logs.filter(queued).length;
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  const during = agent.logs.filter(queued).length - before;
  t.ok(during >= 6, `capture continued during the outage (${during} captures queued)`);
  const backlog = agent.logs.filter((l) => queued(l) && (l.time as number) >= downAt);

  await cloud.restart();
  const upAt = Date.now();
  const backlogKeys = new Set(backlog.flatMap((l) => ['compressed', 'original'].map((v) => frameKey(l.camera as string, l.capturedAt as number, v))));
  const cams = async () => new Map((await cloud.admin<CameraSummary[]>('GET', '/admin/v1/cameras')).body.map((c) => [c.id, c.key]));
  await waitFor(
    async () => {
      const { keys } = cloudKeys(await cloud.allFrames(), await cams());
      return [...backlogKeys].every((k) => keys.has(k));
    },
    60_000,
    'the whole backlog in the cloud',
    250,
  );
  t.comment(`backlog of ${backlogKeys.size} frames drained in ${Date.now() - upAt} ms`);
  const exit = await agent.stop();
  t.equal(exit.code, 0);

  const keyById = await cams();
  const frames = await cloud.allFrames();
  const { keys, duplicates } = cloudKeys(frames, keyById);
  t.same(duplicates, [], 'no capture recorded twice');
  const snap = agentDbSnapshot(dataDir);
  t.equal(frames.length + snap.queued.size, snap.counters.frames_enqueued, 'one record per queued frame, none lost');
  t.notOk([...snap.queued].some((k) => keys.has(k)), 'nothing both queued and stored');
  t.equal(snap.deadLetters, 0, 'an outage dead-letters nothing');
  for (const cam of ['cam1', 'cam2']) {
    const mine = frames.filter((f) => keyById.get(f.cameraId) === cam && backlogKeys.has(frameKey(cam, f.capturedAt, f.variant)));
    const lastCompressed = Math.max(...mine.filter((f) => f.variant === 'compressed').map((f) => f.receivedAt));
    const firstOriginal = Math.min(...mine.filter((f) => f.variant === 'original').map((f) => f.receivedAt));
    t.ok(lastCompressed <= firstOriginal, `${cam}: the backlog drained compressed-first`);
  }
});
