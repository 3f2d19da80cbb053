// The agent process's own contract with init: a clean stop on SIGTERM, an immediate exit on a
// second signal, and a clear refusal of a bad config.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startAgentProcess, writeAgentConfig } from '../helpers/agent-process.js';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { tmpDir } from '../helpers/tmp.js';

const CLI = fileURLToPath(new URL('../../agent/dist/cli.js', import.meta.url));

t.test('SIGTERM during capture: graceful stop, exit 0', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1'] });
  const dataDir = await tmpDir(t);
  const config = writeAgentConfig(dataDir, { cloudUrl: cloud.url, claimCode: await cloud.claimCode(), cameras: [{ id: 'cam1', url: camera.url('/cam1') }] });
  const agent = startAgentProcess(t, config);
  await agent.waitForLog((l) => l.msg === 'camera worker started');
  await new Promise((r) => setTimeout(r, 300)); // ffmpeg is now mid-capture (a capture takes ~1 s)
  const t0 = Date.now();
  const exit = await agent.stop();
  t.same(exit, { code: 0, signal: null });
  t.ok(Date.now() - t0 < 10_000, `stopped in ${Date.now() - t0} ms, within the deadline`);
  t.ok(agent.logs.some((l) => l.msg === 'agent stopped'), 'logged its stop');
});

t.test('a bad config is refused with the option named, exit 78', async (t) => {
  const dataDir = await tmpDir(t);
  const config = writeAgentConfig(dataDir, { cloudUrl: 'http://127.0.0.1:9', captureIntervalMs: 'often', cameras: [{ id: 'a/b', url: 'rtsp://x' }] });
  const r = spawnSync(process.execPath, [CLI, 'run', '--config', config], { encoding: 'utf8' });
  t.equal(r.status, 78);
  t.match(r.stderr, /captureIntervalMs/);
  t.match(r.stderr, /cameras\.0\.id/);
});
