// An uploader that crashes over and over until its supervisor gives up: the camera keeps
// capturing into the queue, the HealthMonitor restarts the upload subtree (escalation step 1),
// the backlog drains, and nothing is lost. The real agent (in-process, so the test can inject
// the fault), the real RTSP camera, ffmpeg, SQLite on disk and the real cloud on loopback.
import t from 'tap';
import type { CameraSummary } from '@vigil/protocol';
import { Agent, openParts } from '../../agent/src/agent.js';
import { loadConfig } from '../../agent/src/config.js';
import { systemClock } from '../../agent/src/lib/clock.js';
import { VigilError } from '../../agent/src/lib/errors.js';
import { silentLogger } from '../../agent/src/lib/logger.js';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { writeAgentConfig } from '../helpers/agent-process.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { cloudKeys } from '../helpers/frames.js';

const UPLOADS = 'cameras/camera:cam1/uploads';

t.test('an uploader that keeps crashing: captures still queue, the health check restarts it, the backlog drains', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1:ball'] });
  const dataDir = await tmpDir(t);
  const config = loadConfig({
    env: {},
    file: writeAgentConfig(dataDir, {
      cloudUrl: cloud.url,
      claimCode: await cloud.claimCode('uploader-crash'),
      captureIntervalMs: 1000,
      cameras: [{ id: 'cam1', url: camera.url('/cam1') }],
      supervision: { variants: { maxRestarts: 3, periodMs: 60_000 } },
      health: { intervalMs: 2000, partRestarts: 5 },
      heartbeatIntervalMs: 2000,
    }),
  });
  const parts = await openParts(config);
  // The fault, injected by the test: while it is on, every start of an uploader throws.
  const fault = { on: true, crashes: 0 };
  const agent = new Agent(config, parts, systemClock, silentLogger(), {
    uploaderService: (u) => ({
      start: (signal) => {
        if (!fault.on) return u.start(signal);
        fault.crashes++;
        return Promise.reject(new VigilError('INJECTED_FAULT', `uploader ${u.camera}/${u.variant}: fault injected by the test`));
      },
    }),
  });
  const stop = new AbortController();
  const running = agent.run(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running.catch(() => undefined);
    agent.close();
  });

  await waitFor(() => agent.tree?.failedParts().some((p) => p.path === UPLOADS) ?? false, 30_000, 'the upload supervisor to give up');
  t.same(agent.tree!.failedParts().map((p) => p.path), [UPLOADS], 'the topmost failure is reported, not the uploaders stopped with it');
  t.ok(fault.crashes >= 4, `the uploaders crashed ${fault.crashes} times before their supervisor gave up (budget 3)`);
  const queuedAtGiveUp = parts.counters.get('captures_queued');
  await waitFor(() => parts.counters.get('captures_queued') >= queuedAtGiveUp + 2, 30_000, 'captures while the uploads are down');
  t.equal(agent.tree!.nodes().get('cameras/camera:cam1/capture')?.status.state, 'running', 'the camera worker was never touched');
  t.ok(parts.queue.depth().reduce((n, d) => n + d.count, 0) > 0, 'the captures wait in the queue');
  t.same((await cloud.allFrames()).length, 0, 'nothing reached the cloud while the uploaders were down');

  fault.on = false;
  await waitFor(() => agent.escalation.steps().some((s) => s.step === 1 && s.part === UPLOADS) && !agent.tree!.failedParts().length, 30_000, 'the health check to restart the subtree');
  await waitFor(() => parts.queue.depth().length === 0, 60_000, 'the backlog to drain', 200);
  stop.abort();
  const exit = await running;
  t.same(exit, { code: 0, reason: null }, 'the agent stops cleanly afterwards');

  const frames = await cloud.allFrames();
  const cams = (await cloud.admin<CameraSummary[]>('GET', '/admin/v1/cameras')).body;
  const { keys, duplicates } = cloudKeys(frames, new Map(cams.map((c) => [c.id, c.key])));
  const enqueued = parts.counters.get('frames_enqueued');
  t.same(duplicates, [], 'no capture recorded twice');
  t.equal(keys.size, enqueued, `all ${enqueued} queued frames arrived (both variants of ${enqueued / 2} captures)`);
  t.equal(parts.queue.deadLetterCount(), 0, 'no dead letters');
  t.same(agent.escalation.steps().map((s) => s.step).filter((s) => s > 1), [], 'no step beyond restarting the part');
  t.equal(agent.escalation.verdict().verdict, 'self_healed', 'the verdict says the device healed itself');
});
