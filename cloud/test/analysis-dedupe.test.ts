import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { DEDUPE_HASH_BITS } from '../src/analysis/frame-intake.js';
import { claimDevice, describeJpeg, startTestCloud, uploadFrame, type TestCloud } from './helpers.js';
import { dimmed, encode, infrared, paste, person, photoScene, withNoise, type Raw } from './scenes.js';

// Dedupe on real JPEG sequences, through the real cloud: frames are uploaded as a device does,
// and the pipeline decides. No detector and no vision model here (the decision is intake's);
// batches are immediate (window 0) so every admitted frame is its own batch.

const START = Date.UTC(2026, 11, 6, 12, 0, 0);
const EVERY_MS = 30_000;

async function setup(t: Test) {
  const cloud = await startTestCloud(t, { batchWindowS: 0 });
  const { token } = await claimDevice(cloud);
  let n = 0;
  const send = async (r: Raw, camera = 'cam-a') => {
    const jpeg = await describeJpeg(await encode(r));
    await uploadFrame(cloud, token, jpeg, { camera, capturedAt: START + n++ * EVERY_MS });
    await cloud.clock.advance(EVERY_MS);
    await cloud.analysis.runOnce();
  };
  return { cloud, send };
}

async function cameraCounts(cloud: TestCloud, key = 'cam-a') {
  const cam = (await cloud.store.listCameras()).find((c) => c.key === key)!;
  return (await cloud.store.analysis.cameraState(cam.id))!;
}

t.test('a still scene with sensor noise: the first frame is analysed, the rest skipped', async (t) => {
  const { cloud, send } = await setup(t);
  const scene = await photoScene();
  for (let i = 0; i < 20; i++) await send(withNoise(scene, 6, i + 1));
  const c = await cameraCounts(cloud);
  t.equal(c.framesSeen, 20);
  t.equal(c.framesBatched, 1, 'only the first');
  t.equal(c.framesSkipped, 19);
  t.ok(c.framesSkipped / c.framesSeen >= 0.9, `skip rate ${((100 * c.framesSkipped) / c.framesSeen).toFixed(0)} % ≥ 90 %`);
  const counters = await cloud.store.analysis.counters();
  t.equal(counters.jobs.frame.done, 20, 'every frame job ended');
  t.equal(counters.batches.done, 1, 'one batch analysed');
});

t.test('a still scene is analysed again after reanalyseAfterS', async (t) => {
  const cloud = await startTestCloud(t, { batchWindowS: 0, reanalyseAfterS: 300 });
  const { token } = await claimDevice(cloud);
  const scene = await photoScene();
  for (let i = 0; i < 21; i++) {
    const jpeg = await describeJpeg(await encode(withNoise(scene, 8, i + 1)));
    await uploadFrame(cloud, token, jpeg, { capturedAt: START + i * EVERY_MS });
    await cloud.analysis.runOnce();
  }
  // 0 s, 300 s, 600 s: every 10th frame (30 s apart) is re-analysed.
  t.equal((await cameraCounts(cloud)).framesBatched, 3);
});

t.test('a person walking across the scene: every step is analysed', async (t) => {
  const { cloud, send } = await setup(t);
  const scene = await photoScene();
  await send(withNoise(scene, 8, 1));
  const walker = await person(120);
  for (let step = 0; step < 6; step++) await send(withNoise(await paste(scene, walker, 20 + step * 100, 120), 8, step + 10));
  const c = await cameraCounts(cloud);
  t.equal(c.framesBatched, 7, 'the empty scene, then each of the 6 steps');
  t.equal(c.framesSkipped, 0);
});

// The behaviour chosen (frame-intake.ts): lights at half are the same scene, skipped; the switch
// to infrared changes the picture's structure, so its first frame is analysed and becomes the
// reference, and the infrared frames after it are skipped.
t.test('the lights go down: skipped; infrared: its first frame is analysed, the frames after it are not', async (t) => {
  const { cloud, send } = await setup(t);
  const scene = await photoScene();
  await send(withNoise(scene, 8, 1));
  await send(withNoise(scene, 8, 2));
  const dark = await dimmed(scene, 0.5);
  for (let i = 0; i < 4; i++) await send(withNoise(dark, 8, 20 + i));
  const ir = await infrared(scene);
  for (let i = 0; i < 4; i++) await send(withNoise(ir, 8, 30 + i));
  const c = await cameraCounts(cloud);
  t.equal(c.framesBatched, 2, 'the first frame and the first infrared one');
  t.equal(c.framesSkipped, 8, 'the second frame, the 4 dark ones, 3 infrared ones');
});

t.test('a frame that is not a complete JPEG is marked and never analysed', async (t) => {
  const cloud = await startTestCloud(t, { batchWindowS: 0 });
  const { token } = await claimDevice(cloud);
  // The upload checks refuse a broken JPEG, so this one was damaged on disk after it was
  // accepted (a disk error, a bad copy): recorded as the store would, with its object cut short.
  const good = await describeJpeg(await encode(await photoScene()));
  const device = (await cloud.store.listDevices())[0]!;
  const camera = await cloud.store.ensureCamera(device.id, 'cam-a', 'cam_broken', cloud.clock.now());
  const objectKey = 'damaged/frame.jpg';
  mkdirSync(join(cloud.objectsDir, 'damaged'), { recursive: true });
  writeFileSync(join(cloud.objectsDir, objectKey), good.bytes.subarray(0, good.bytes.length >> 1));
  await cloud.store.createUpload({ id: 'upl_damaged', deviceId: device.id, cameraId: camera.id, capturedAt: START, variant: 'compressed', bytes: good.bytes.length, sha256: good.sha256, dhash: good.dhash, objectKey, createdAt: cloud.clock.now() });
  await cloud.store.completeUpload('upl_damaged', 'frm_damaged', cloud.clock.now());
  await cloud.analysis.runOnce();
  const c = await cameraCounts(cloud);
  t.equal(c.framesInvalid, 1);
  t.equal(c.framesBatched, 0, 'not analysed');
  t.equal((await cloud.store.analysis.counters()).batches.done, 0);
  // The camera's next good frame is its first analysed one.
  await uploadFrame(cloud, token, await describeJpeg(await encode(withNoise(await photoScene(), 8, 5))), { capturedAt: START + EVERY_MS });
  await cloud.analysis.runOnce();
  t.equal((await cameraCounts(cloud)).framesBatched, 1);
});

t.test('the hash is 256 bits', async (t) => {
  t.equal(DEDUPE_HASH_BITS, 256);
});
