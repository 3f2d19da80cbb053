// The fleet watch end to end: the real agent process heartbeating to the real cloud, which
// alerts through a webhook (a receiver on loopback). A camera that freezes (the RTSP test
// camera keeps sending one still picture) raises camera_frozen and closes it when the picture
// moves again; a device that stops heartbeating (SIGSTOP: the process is frozen, as a hung
// board is) raises device_silent and closes it when the heartbeats come back (SIGCONT).
import t, { type Test } from 'tap';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { startAgentProcess, writeAgentConfig } from '../helpers/agent-process.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

interface Alert {
  id: string;
  kind: string;
  state: 'open' | 'closed';
  cameraKey: string | null;
  title: string;
  detail: Record<string, unknown>;
}

interface Delivery {
  event: string;
  alert: { id: string; kind: string; state: string };
}

async function webhookReceiver(t: Test): Promise<{ url: string; received: Delivery[] }> {
  const received: Delivery[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      received.push(JSON.parse(body) as Delivery);
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

t.test('frozen camera and silent device: alerts open and close through the webhook', async (t) => {
  const hook = await webhookReceiver(t);
  const cloud = await startTestCloud(t, {
    fleetSweepIntervalS: 1,
    deviceSilentS: 3,
    frozenFrames: 3,
    webhookUrls: [hook.url],
    webhookSecret: 'fleet-watch-e2e-secret',
  });
  const camera = await startRtspCamera(t, { mounts: ['/cam1:ball'] });
  const dataDir = await tmpDir(t);
  const agent = startAgentProcess(
    t,
    writeAgentConfig(dataDir, {
      cloudUrl: cloud.url,
      claimCode: await cloud.claimCode('fleet-watch'),
      captureIntervalMs: 1500,
      heartbeatIntervalMs: 500,
      health: { intervalMs: 1000 },
      cameras: [{ id: 'cam1', name: 'Till', url: camera.url('/cam1') }],
    }),
  );
  await agent.waitForLog((l) => l.msg === 'device claimed', 20_000);
  const alerts = async (state: 'open' | 'closed' | 'all' = 'all') => (await cloud.admin<Alert[]>('GET', `/admin/v1/alerts?state=${state}`)).body;
  const openOf = async (kind: string) => (await alerts('open')).find((a) => a.kind === kind);
  const heard = (event: string, kind: string) => hook.received.some((d) => d.event === event && d.alert.kind === kind);

  // Heartbeats arrive; a moving picture raises nothing
  await waitFor(async () => (await cloud.allFrames()).length >= 8, 60_000, 'four captures in the cloud', 500);
  t.same(await alerts(), [], 'a healthy device with a moving picture: no alert');

  await camera.freeze();
  await waitFor(async () => (await openOf('camera_frozen')) !== undefined, 60_000, 'a camera_frozen alert', 500);
  const frozen = (await openOf('camera_frozen'))!;
  t.equal(frozen.cameraKey, 'cam1', 'about the camera that froze');
  await waitFor(() => heard('alert.opened', 'camera_frozen'), 20_000, 'the webhook to hear of it');
  await camera.thaw();
  await waitFor(async () => (await openOf('camera_frozen')) === undefined, 60_000, 'the frozen alert to close', 500);
  await waitFor(() => heard('alert.closed', 'camera_frozen'), 20_000, 'the webhook to hear it closed');
  t.pass('frozen: opened, notified, closed when the picture moved again, notified');

  agent.child.kill('SIGSTOP');
  t.teardown(() => void agent.child.kill('SIGCONT'));
  await waitFor(async () => (await openOf('device_silent')) !== undefined, 20_000, 'a device_silent alert', 250);
  await waitFor(() => heard('alert.opened', 'device_silent'), 20_000, 'the webhook to hear of it');
  agent.child.kill('SIGCONT');
  await waitFor(async () => (await openOf('device_silent')) === undefined, 20_000, 'the silent alert to close', 250);
  await waitFor(() => heard('alert.closed', 'device_silent'), 20_000, 'the webhook to hear it closed');
  t.pass('silent: opened, notified, closed when heartbeats returned, notified');

  const all = await alerts();
  t.same(all.map((a) => a.state), all.map(() => 'closed'), 'every alert is closed again');
  t.same((await agent.stop()).code, 0);
});
