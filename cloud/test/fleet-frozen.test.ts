import t from 'tap';
import { hammingDistance } from '@vigil/protocol';
import sharp from 'sharp';
import { claimDevice, describeJpeg, listAlerts, presign, presignBody, startTestCloud, uploadFrame, type Jpeg } from './helpers.js';

/**
 * A static scene (a smooth gradient) with a small on-screen clock in one corner whose digits
 * change every frame, as many cameras burn one in: consecutive frames differ by a few dHash
 * bits, never by many. `person` puts something large in the middle: a different picture.
 */
async function scene(n: number, person = false): Promise<Jpeg> {
  const w = 520;
  const h = 384;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 30 + Math.floor((x * 190) / w);
      if (x >= 8 && x < 24 && y >= 8 && y < 16) v = ((x >> 3) * 53 + n * 97) % 256;
      if (person && x > 200 && x < 320 && y > 100 && y < 380) v = 240 - Math.floor(((x - 200) * 190) / 120);
      raw.fill(v, (y * w + x) * 3, (y * w + x) * 3 + 3);
    }
  }
  return describeJpeg(await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 70 }).toBuffer());
}

const MINUTE = 60_000;

t.test('the same picture over and over: camera_frozen after 10 frames; a different frame closes it', async (t) => {
  const cloud = await startTestCloud(t); // defaults: 10 frames, 16 bits
  const dev = await claimDevice(cloud);
  const frames = await Promise.all(Array.from({ length: 12 }, (_, i) => scene(i)));
  const distances = frames.map((f) => hammingDistance(frames[0]!.dhash, f.dhash));
  t.ok(distances.every((d) => d <= 16) && distances.some((d) => d > 0), `near, not equal: ${distances.join(' ')}`);

  const at = (i: number) => 1_700_000_000_000 + i * 30_000;
  for (let i = 0; i < 9; i++) {
    await uploadFrame(cloud, dev.token, frames[i]!, { capturedAt: at(i) });
    // The original of the same capture is the same picture: it must not count twice.
    await uploadFrame(cloud, dev.token, frames[i]!, { capturedAt: at(i), variant: 'original' });
    await cloud.clock.advance(30_000);
  }
  // A retried upload of frame 9 (already recorded) is not a tenth frame either.
  const retry = await presign(cloud, dev.token, presignBody(frames[8]!, { capturedAt: at(8) }));
  t.equal(retry.body.status, 'exists');
  t.same(await listAlerts(cloud), [], 'nine look-alikes: not yet');

  await uploadFrame(cloud, dev.token, frames[9]!, { capturedAt: at(9) });
  const [alert] = await listAlerts(cloud, 'state=open');
  t.match(alert, {
    kind: 'camera_frozen',
    deviceId: dev.deviceId,
    cameraId: /^cam_/,
    cameraKey: 'cam-a',
    title: /cam-a .* same picture \(10 frames in a row\)/,
    detail: { frames: 10, maxDistance: 16 },
  });

  await uploadFrame(cloud, dev.token, frames[10]!, { capturedAt: at(10) });
  t.equal((await listAlerts(cloud, 'state=all')).length, 1, 'still the one alert');

  await uploadFrame(cloud, dev.token, await scene(11, true), { capturedAt: at(11) });
  const [closed] = await listAlerts(cloud, 'state=all');
  t.match(closed, { id: alert.id, state: 'closed', resolution: 'a frame differs' });

  // Frozen again: a new alert after another 10.
  for (let i = 12; i < 22; i++) await uploadFrame(cloud, dev.token, frames[i % 12]!, { capturedAt: at(i) });
  t.same((await listAlerts(cloud, 'state=all')).map((a) => a.state), ['open', 'closed']);
});

t.test('the distance threshold decides what counts as the same picture', async (t) => {
  const cloud = await startTestCloud(t, { frozenFrames: 3, frozenMaxDistance: 0 });
  const dev = await claimDevice(cloud);
  const frames = await Promise.all([1, 2, 3, 4].map((n) => scene(n)));
  for (let i = 1; i < frames.length; i++) t.not(frames[i]!.dhash, frames[i - 1]!.dhash, 'each frame differs by a few bits');
  for (const [i, f] of frames.entries()) await uploadFrame(cloud, dev.token, f, { capturedAt: 1000 + i });
  t.same(await listAlerts(cloud), [], 'at distance 0, a changing clock is a changing picture');

  for (let i = 0; i < 3; i++) await uploadFrame(cloud, dev.token, frames[0]!, { capturedAt: 2000 + i }); // byte-identical
  t.match(await listAlerts(cloud, 'state=open'), [{ kind: 'camera_frozen', detail: { frames: 3, maxDistance: 0 } }]);
});

t.test('only compressed frames are judged: originals alone never make a frozen camera', async (t) => {
  const cloud = await startTestCloud(t, { frozenFrames: 3 });
  const dev = await claimDevice(cloud);
  const still = await scene(1);
  for (let i = 0; i < 4; i++) await uploadFrame(cloud, dev.token, still, { capturedAt: 1000 + i * MINUTE, variant: 'original' });
  t.same(await listAlerts(cloud), []);
});

t.test('frozen is per camera: another camera of the device is not affected', async (t) => {
  const cloud = await startTestCloud(t, { frozenFrames: 3 });
  const dev = await claimDevice(cloud);
  const still = await scene(1);
  for (let i = 0; i < 3; i++) {
    await uploadFrame(cloud, dev.token, still, { camera: 'cam-still', capturedAt: 1000 + i * MINUTE });
    await uploadFrame(cloud, dev.token, await scene(i, i % 2 === 0), { camera: 'cam-live', capturedAt: 1000 + i * MINUTE });
  }
  t.match(await listAlerts(cloud), [{ kind: 'camera_frozen', cameraKey: 'cam-still' }]);
  t.equal((await listAlerts(cloud)).length, 1);
});
