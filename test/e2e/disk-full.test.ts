// Disk full: the agent's whole data dir on a small tmpfs while the cloud is away. Capture
// fails with a clear DISK_FULL, nothing crashes, and capture resumes once uploads free space.
import t from 'tap';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { startAgentProcess, writeAgentConfig } from '../helpers/agent-process.js';
import { tinyTmpfs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

t.test('disk full: clear logs, no crash, capture resumes when space returns', async (t) => {
  const fs = await tinyTmpfs(t, 3 * 1024 * 1024);
  if ('skip' in fs) {
    t.pass('disk-full drill', { skip: `needs a tmpfs mount: ${fs.skip}` });
    return;
  }
  const cloud = await startTestCloud(t);
  // Snow: noise compresses badly, so a few captures fill the disk.
  const camera = await startRtspCamera(t, { mounts: ['/cam1:snow'], size: '1280x720' });
  const config = writeAgentConfig(fs.dir, {
    cloudUrl: cloud.url,
    claimCode: await cloud.claimCode('disk-full'),
    // A clock 100× fast keeps the uploaders' outage backoff (up to 30 min) short in real time.
    clockScale: 100,
    captureIntervalMs: 60_000,
    captureTimeoutMs: 3_000_000,
    rtspTimeoutMs: 1_000_000,
    cameras: [{ id: 'cam1', url: camera.url('/cam1') }],
  });
  const first = startAgentProcess(t, config);
  await first.waitForLog((l) => l.msg === 'device claimed', 20_000);
  await cloud.close();
  const isFull = (l: { [k: string]: unknown }) => JSON.stringify(l).includes('DISK_FULL');
  await first.waitForLog(isFull, 60_000);
  // A power cut on a full disk: the agent must start again and keep going, not crash-loop.
  await first.kill();
  const agent = startAgentProcess(t, config);
  await agent.waitForLog((l) => l.msg === 'agent started', 20_000);
  await agent.waitForLog(isFull, 30_000);
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(agent.child.exitCode, null, 'the agent is still running on a full disk');
  const fullLogs = [...first.logs, ...agent.logs].filter(isFull);
  t.ok(fullLogs.length >= 2, `disk full reported ${fullLogs.length} times`);
  t.ok(fullLogs.every((l) => (l.level as number) >= 40), 'reported as a warning or error');
  t.comment(`first report: ${JSON.stringify(fullLogs[0])}`);

  await cloud.restart();
  const resumedFrom = agent.logs.length;
  const resumed = await agent.waitForLog((l) => agent.logs.indexOf(l) > resumedFrom && l.msg === 'capture queued', 60_000);
  t.ok(resumed, 'capture resumed once uploads freed space');
  await waitFor(async () => (await cloud.allFrames()).length > 0, 30_000, 'the backlog reaches the cloud', 250);
  const exit = await agent.stop();
  t.equal(exit.code, 0, 'still stops cleanly');
});
