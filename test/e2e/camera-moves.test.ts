// A camera that changes IP overnight, end to end, in a private LAN of network namespaces
// (test/helpers/netns.ts): the simulated ONVIF camera and its RTSP stream in one namespace, the
// real agent process and the real cloud in another. The agent finds the camera by multicast,
// captures it, and when the camera's address changes between discoveries the registry entry
// stays the same, the worker follows the camera to its new address, and the cloud still has
// one camera, whose frames go on.
import t from 'tap';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { spawnOnvifSim } from '../../tools/onvif-sim/spawn.ts';
import { createLan, netnsSkipReason } from '../helpers/netns.js';
import { startAgentProcess, writeAgentConfig, type AgentLogLine } from '../helpers/agent-process.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const CLOUD_CLI = fileURLToPath(new URL('../../cloud/dist/cli.js', import.meta.url));
const RTSP_CAMERA = fileURLToPath(new URL('../../tools/rtsp-camera.py', import.meta.url));
const MAC = '02:56:0a:4d:00:07';
const KEY = 'mac-02560a4d0007';
const skip = await netnsSkipReason();

t.test('a camera that changes IP: same registry entry, the worker follows, one camera in the cloud', { skip: skip ?? false }, async (t) => {
  const lan = await createLan(t, { hosts: ['cam', 'agent'], key: import.meta.url });
  const cam = lan.host('cam');
  const agentHost = lan.host('agent');
  const firstAddress = cam.address;

  // The camera: its RTSP stream on port 554 and its ONVIF service on 80, both on every address
  const rtsp = lan.spawn('cam', '/usr/bin/python3', [RTSP_CAMERA, '--bind', '0.0.0.0', '--port', '554', '--mount', '/Streaming/Channels/101:ball'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = createInterface({ input: rtsp.stdout! });
  const [ready] = (await Promise.race([once(lines, 'line'), once(rtsp, 'exit').then(() => ['exited'])])) as [string];
  t.match(ready, /^ready /, 'the RTSP camera runs in its namespace');
  const sim = await spawnOnvifSim(
    { bind: '0.0.0.0', port: 80, discoveryIfaceAddress: cam.address, serial: '0004711', mac: MAC, username: 'admin', password: 'site-pass', name: 'Back door' },
    { prefix: lan.prefix('cam') },
  );
  t.teardown(() => sim.stop());

  // The cloud, inside the agent's namespace (its loopback), with a claim code made beside it
  const cloudDir = await tmpDir(t, 'vigil-cloud-');
  const cloud = lan.spawn('agent', process.execPath, [CLOUD_CLI, 'serve', '--host', '127.0.0.1', '--port', '8080', '--data-dir', cloudDir, '--log-level', 'warn'], {
    stdio: 'ignore',
    env: { ...process.env, VIGIL_ADMIN_TOKEN: 'camera-moves-admin-token-0123456789' },
  });
  t.teardown(() => void cloud.kill('SIGTERM'));
  const code = (await run(process.execPath, [CLOUD_CLI, 'claim-code', '--site', 'camera-moves', '--data-dir', cloudDir])).stdout.trim();
  const cloudDb = (): { cameras: { key: string }[]; frames: number } => {
    const db = new Database(join(cloudDir, 'cloud.db'), { readonly: true, fileMustExist: true });
    try {
      return {
        cameras: db.prepare<[], { key: string }>('SELECT key FROM cameras').all(),
        frames: (db.prepare('SELECT count(*) AS n FROM frames').get() as { n: number }).n,
      };
    } finally {
      db.close();
    }
  };

  const dataDir = await tmpDir(t);
  const agent = startAgentProcess(
    t,
    writeAgentConfig(dataDir, {
      cloudUrl: 'http://127.0.0.1:8080',
      claimCode: code,
      captureIntervalMs: 1500,
      // Multicast bound to the agent's address in its namespace: nothing leaves the LAN.
      discovery: { enabled: true, interfaceAddress: agentHost.address, intervalMs: 2500, probeWaitMs: 1000, lostAfterRounds: 3 },
      cameraCredentials: { default: { username: 'admin', password: 'site-pass' } },
    }),
    {},
    'run',
    lan.prefix('agent'),
  );
  const started = (l: AgentLogLine) => l.msg === 'camera capture started' && l.camera === KEY;
  const first = await agent.waitForLog(started, 60_000);
  t.match(first.rtsp, `rtsp://${firstAddress}:554/Streaming/Channels/101`, 'found by multicast and captured at its first address');
  await waitFor(() => cloudDb().frames >= 4, 60_000, 'frames in the cloud', 500);

  const newAddress = `10.77.${lan.subnet}.77`;
  await lan.setAddress('cam', newAddress);
  const moved = await agent.waitForLog((l) => l.msg === 'camera moved to a new address' && l.camera === KEY, 60_000);
  t.same([moved.from, moved.to], [firstAddress, newAddress], 'the registry entry moved with the camera');
  const repointed = await agent.waitForLog((l) => l.msg === 'camera capture repointed' && l.camera === KEY, 30_000);
  t.match(repointed.rtsp, `rtsp://${newAddress}:554/`, 'the worker follows it to the new address');
  const framesAtMove = cloudDb().frames;
  await waitFor(() => cloudDb().frames >= framesAtMove + 4, 60_000, 'frames from the new address', 500);

  t.same(cloudDb().cameras.map((c) => c.key), [KEY], 'one camera in the cloud, keyed by MAC, never by IP');
  t.equal(agent.logs.filter(started).length, 1, 'started once; after the move it was repointed, not added again');
  t.same((await agent.stop()).code, 0);

  const status = startAgentProcess(t, join(dataDir, 'agent.json'), {}, 'status');
  await status.exited;
  const printed = JSON.parse(status.logs.map((l) => l.msg).join('\n')) as { cameras: { camera: string; address: string; present: boolean; lastError: string | null }[] };
  t.match(printed.cameras, [{ camera: KEY, address: `${newAddress}`, present: true, lastError: null }], '`vigil-agent status` lists the camera at its new address');
});
