// Two cameras on the real RTSP test server, the real agent process, the real cloud:
// both variants of every capture arrive, with the capture's dHash, exactly once.
import t from 'tap';
import type { CameraSummary } from '@vigil/protocol';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera } from '../helpers/rtsp-camera.js';
import { startAgentProcess, writeAgentConfig } from '../helpers/agent-process.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { agentDbSnapshot, cloudKeys, frameKey } from '../helpers/frames.js';
import { readdirSync } from 'node:fs';
import sharp from 'sharp';
import { join } from 'node:path';

t.test('two cameras: every capture arrives in both variants, with dHash, exactly once', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1:ball', '/cam2:smpte'], size: '1280x720' });
  const dataDir = await tmpDir(t);
  const config = writeAgentConfig(dataDir, {
    cloudUrl: cloud.url,
    claimCode: await cloud.claimCode('two-cameras'),
    captureIntervalMs: 2000,
    cameras: [
      { id: 'cam1', name: 'Front door', url: camera.url('/cam1') },
      { id: 'cam2', name: 'Till', url: camera.url('/cam2') },
    ],
  });
  const agent = startAgentProcess(t, config);
  await agent.waitForLog((l) => l.msg === 'device claimed', 20_000);
  await waitFor(
    async () => {
      const cams = (await cloud.admin<CameraSummary[]>('GET', '/admin/v1/cameras')).body;
      return cams.length === 2 && cams.every((c) => c.frames >= 6);
    },
    60_000,
    'three captures per camera in the cloud',
    500,
  );
  // The inventory: both cameras, named, read over RTSP
  type Inventoried = CameraSummary & { inventory: { name: string; source: string; capturePath: string; present: boolean; address: string } | null };
  await waitFor(async () => (await cloud.admin<Inventoried[]>('GET', '/admin/v1/cameras')).body.every((c) => c.inventory !== null), 20_000, 'the inventory', 250);
  const inventory = (await cloud.admin<Inventoried[]>('GET', '/admin/v1/cameras')).body.map((c) => [c.key, c.inventory]).sort();
  t.match(inventory, [
    ['cam1', { name: 'Front door', source: 'config', capturePath: 'rtsp', present: true, address: `127.0.0.1:${camera.port}` }],
    ['cam2', { name: 'Till', source: 'config', capturePath: 'rtsp', present: true, address: `127.0.0.1:${camera.port}` }],
  ], 'the inventory names both cameras, their address and capture path');
  const exit = await agent.stop();
  t.equal(exit.code, 0, 'SIGTERM stops the agent cleanly');

  const cams = (await cloud.admin<CameraSummary[]>('GET', '/admin/v1/cameras')).body;
  const keyById = new Map(cams.map((c) => [c.id, c.key]));
  t.same(cams.map((c) => c.key).sort(), ['cam1', 'cam2']);
  const frames = await cloud.allFrames();
  const { keys, duplicates } = cloudKeys(frames, keyById);
  t.same(duplicates, [], 'no capture recorded twice');
  const snap = agentDbSnapshot(dataDir);
  t.equal(frames.length + snap.queued.size, snap.counters.frames_enqueued, 'cloud + still queued = everything enqueued');
  for (const k of snap.queued) t.notOk(keys.has(k), `still-queued ${k} is not also in the cloud`);
  // Both variants of each capture, carrying the same dHash.
  const byCapture = new Map<string, typeof frames>();
  for (const f of frames) {
    const k = `${keyById.get(f.cameraId)}/${f.capturedAt}`;
    byCapture.set(k, [...(byCapture.get(k) ?? []), f]);
  }
  for (const [k, pair] of byCapture) {
    const [camera, at] = k.split('/') as [string, string];
    const other = pair.length === 2 ? undefined : pair[0]!.variant === 'original' ? 'compressed' : 'original';
    if (other) t.ok(snap.queued.has(frameKey(camera, Number(at), other)), `${k}: the missing variant is still queued`);
    else t.equal(pair[0]!.dhash, pair[1]!.dhash, `${k}: both variants carry the capture's dHash`);
    for (const f of pair) t.match(f.dhash, /^[0-9a-f]{1024}$/);
  }
  const originals = frames.filter((f) => f.variant === 'original');
  t.ok(new Set(originals.map((f) => f.dhash)).size > 1, 'a moving scene gives different hashes');
  for (const [variant, width, height] of [['original', 1280, 720], ['compressed', 1024, 576]] as const) {
    const f = frames.find((x) => x.variant === variant)!;
    const res = await fetch(cloud.url + `/admin/v1/frames/${f.id}/image`, { headers: { authorization: `Bearer ${cloud.adminToken}` } });
    t.equal(res.headers.get('content-type'), 'image/jpeg');
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    t.same([meta.width, meta.height], [width, height], `${variant} is ${width}x${height}`);
  }
  t.equal(snap.integrity, 'ok');
  t.same(readdirSync(join(dataDir, 'spool', '.work')).flatMap((d) => readdirSync(join(dataDir, 'spool', '.work', d))), [], 'no capture work left behind');
});
