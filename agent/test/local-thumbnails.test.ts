// The status page's thumbnails with real ffmpeg: kept from what the outbox accepts, the outbox's
// answer unchanged, scaled once per frame however many ask, never upscaled, a failure not kept.
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Capture } from '../src/capture/types.js';
import { silentLogger } from '../src/lib/logger.js';
import { Thumbnails, THUMBNAIL_SOURCE_MAX_BYTES, thumbnailArgs } from '../src/local/thumbnails.js';
import { makeJpeg } from '../../test/helpers/jpeg.js';

async function capture(dir: string, camera: string, capturedAt: number, compressed: Buffer): Promise<Capture> {
  const files = { compressed: join(dir, `${camera}-${capturedAt}-c.jpg`), original: join(dir, `${camera}-${capturedAt}-o.jpg`) };
  await writeFile(files.compressed, compressed);
  await writeFile(files.original, compressed);
  return { camera, capturedAt, dhash: '0', files };
}

const size = async (b: Buffer): Promise<number[]> => {
  const m = await sharp(b).metadata();
  return [m.width, m.height];
};

t.test('kept only when the outbox accepts the capture; the outbox error is the capture error', async (t) => {
  const dir = t.testdir({});
  const th = new Thumbnails({ ffmpegPath: 'ffmpeg', log: silentLogger() });
  const refuse = th.tap(async () => {
    throw Object.assign(new Error('disk full'), { code: 'DISK_FULL' });
  });
  await t.rejects(refuse(await capture(dir, 'cam1', 1, await makeJpeg(640, 360))), { code: 'DISK_FULL' });
  t.equal(th.latestAt('cam1'), null, 'a refused capture is not shown');
  t.equal(await th.get('cam1'), null);
  const accept = th.tap(async () => undefined);
  await accept(await capture(dir, 'cam1', 2, await makeJpeg(1024, 576)));
  t.equal(th.latestAt('cam1'), 2);
  await accept(await capture(dir, 'cam1', 1, await makeJpeg(640, 480)));
  t.equal(th.latestAt('cam1'), 2, 'an older frame arriving late does not replace a newer one');
  const missing = { camera: 'cam2', capturedAt: 3, dhash: '0', files: { compressed: join(dir, 'gone.jpg'), original: join(dir, 'gone.jpg') } };
  await t.resolves(accept(missing), 'a frame the thumbnails cannot read changes nothing for the capture');
  t.equal(th.latestAt('cam2'), null);
});

t.test('320 px wide, once per frame, never upscaled; a new frame is scaled again', async (t) => {
  const dir = t.testdir({});
  const th = new Thumbnails({ ffmpegPath: 'ffmpeg', log: silentLogger() });
  const accept = th.tap(async () => undefined);
  await accept(await capture(dir, 'cam1', 10, await makeJpeg(1024, 768)));
  const [a, b, c] = await Promise.all([th.get('cam1'), th.get('cam1'), th.get('cam1')]);
  t.same(await size(a!.jpeg), [320, 240]);
  t.equal(a!.capturedAt, 10);
  t.ok(a!.jpeg === b!.jpeg && b!.jpeg === c!.jpeg, 'three requests, one ffmpeg run');
  t.equal((await th.get('cam1'))!.jpeg, a!.jpeg, 'cached until the next frame');
  await accept(await capture(dir, 'cam1', 11, await makeJpeg(200, 150)));
  const small = await th.get('cam1');
  t.same(await size(small!.jpeg), [200, 150], 'a frame narrower than 320 px keeps its size');
  t.equal(small!.capturedAt, 11);
});

t.test('a frame ffmpeg cannot read fails that request, and is tried again on the next', async (t) => {
  const dir = t.testdir({});
  const broken = new Thumbnails({ ffmpegPath: 'ffmpeg', log: silentLogger() });
  await broken.tap(async () => undefined)(await capture(dir, 'cam1', 1, Buffer.from('not a jpeg at all')));
  await t.rejects(broken.get('cam1'), { code: 'THUMBNAIL_FAILED' });
  await t.rejects(broken.get('cam1'), { code: 'THUMBNAIL_FAILED' }, 'not cached');
  const noFfmpeg = new Thumbnails({ ffmpegPath: join(dir, 'no-ffmpeg'), log: silentLogger() });
  await noFfmpeg.tap(async () => undefined)(await capture(dir, 'cam2', 1, await makeJpeg(64, 48)));
  await t.rejects(noFfmpeg.get('cam2'), { code: 'THUMBNAIL_FAILED', message: /cannot run ffmpeg/ });
  const big = new Thumbnails({ ffmpegPath: 'ffmpeg', log: silentLogger() });
  await big.tap(async () => undefined)(await capture(dir, 'cam3', 1, Buffer.alloc(THUMBNAIL_SOURCE_MAX_BYTES + 1)));
  t.equal(big.latestAt('cam3'), null, 'a frame over 1 MiB is not kept');
  t.match(thumbnailArgs().join(' '), /-f jpeg_pipe -i pipe:0 .* pipe:1$/, 'one JPEG on stdin, one on stdout');
});
