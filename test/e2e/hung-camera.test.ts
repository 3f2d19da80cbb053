// A camera that accepts the TCP connection and never sends a frame: its capture is killed at
// the timeout and its next cycle runs; the other camera is unaffected.
import t from 'tap';
import { createServer, type Socket } from 'node:net';
import type { CameraSummary } from '@vigil/protocol';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { startAgentProcess, writeAgentConfig } from '../helpers/agent-process.js';
import { tmpDir } from '../helpers/tmp.js';
import { agentDbSnapshot } from '../helpers/frames.js';

t.test('a silent camera times out every cycle while the healthy one keeps its rhythm', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1'] });
  const sockets = new Set<Socket>();
  const silent = createServer((s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => silent.close(() => r()));
  });
  const silentPort = (silent.address() as { port: number }).port;
  const dataDir = await tmpDir(t);
  const config = writeAgentConfig(dataDir, {
    cloudUrl: cloud.url,
    claimCode: await cloud.claimCode('hung'),
    captureIntervalMs: 1500,
    // ffmpeg's own socket timeout is set longer than the hard timeout: the agent's SIGKILL is what ends it.
    rtspTimeoutMs: 60_000,
    cameras: [
      { id: 'good', url: camera.url('/cam1') },
      { id: 'silent', url: `rtsp://127.0.0.1:${silentPort}/stream`, captureTimeoutMs: 2500 },
    ],
  });
  const agent = startAgentProcess(t, config);
  const timeouts = () => agent.logs.filter((l) => l.camera === 'silent' && JSON.stringify(l).includes('CAPTURE_TIMEOUT'));
  await agent.waitForLog(() => timeouts().length >= 3, 30_000);
  const goods = agent.logs.filter((l) => l.msg === 'capture queued' && l.camera === 'good');
  const good = goods.length;
  // Timed from the healthy camera's first capture: how long the process takes to start (and
  // claim) is not the rhythm under test.
  const elapsed = Date.now() - Number(goods[0]?.time ?? Date.now());
  const exit = await agent.stop();
  t.equal(exit.code, 0);
  t.ok(timeouts().length >= 3, `the silent camera timed out ${timeouts().length} times: each cycle went on`);
  // The healthy camera's rhythm: one capture per 1.5 s interval since its first, give or take
  // one (and three at the least: three silent timeouts take 7.5 s).
  const expected = Math.max(3, Math.floor(elapsed / 1500));
  t.ok(good >= expected, `healthy camera captured ${good} times in ${elapsed} ms (expected ≥ ${expected})`);
  t.ok(sockets.size >= 3, 'the silent camera was really connected to each cycle');
  const snap = agentDbSnapshot(dataDir);
  t.notOk([...snap.queued].some((k) => k.startsWith('silent/')), 'nothing queued for the silent camera');
  const cams = (await cloud.admin<CameraSummary[]>('GET', '/admin/v1/cameras')).body;
  // Both are in the cloud's inventory; only one has frames.
  t.same(cams.filter((c) => c.frames > 0).map((c) => c.key), ['good'], 'only the healthy camera has frames in the cloud');
});
