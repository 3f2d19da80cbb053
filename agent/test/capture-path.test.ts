import t from 'tap';
import { VigilError } from '../src/lib/errors.js';
import { silentLogger } from '../src/lib/logger.js';
import { CaptureRouter } from '../src/capture/capture-path.js';
import type { FrameCaptureRequest, FrameCaptureResult } from '../src/capture/ffmpeg-capture.js';

const OK: FrameCaptureResult = { dhash: '0'.repeat(1024), files: { original: 'o.jpg', compressed: 'c.jpg' }, elapsedMs: 1 };
const REQ: FrameCaptureRequest = { url: 'ignored', workDir: '/tmp/x' };

function camera(o: { rtspWorks: () => boolean; failCode?: string; mode?: 'auto' | 'rtsp' | 'snapshot'; snapshotUrl?: string | undefined }) {
  const calls: string[] = [];
  const router = new CaptureRouter({
    mode: o.mode ?? 'auto',
    rtspUrl: 'rtsp://cam/stream',
    snapshotUrl: 'snapshotUrl' in o ? o.snapshotUrl : 'http://cam/snap.jpg',
    log: silentLogger(),
    failuresBeforeFallback: 3,
    rtspRetryEvery: 4,
    rtsp: async (r) => {
      calls.push(`rtsp ${r.url}`);
      if (o.rtspWorks()) return OK;
      throw new VigilError(o.failCode ?? 'CAPTURE_TIMEOUT', 'no frame');
    },
    snapshot: async (r) => {
      calls.push(`snapshot ${r.url}`);
      return OK;
    },
  });
  const tick = () => router.capture(REQ).then(() => 'ok', (e: VigilError) => e.code);
  return { router, calls, tick };
}

t.test('auto: RTSP while it works; after 3 failures the snapshot URI; RTSP tried again every 4th capture; back when it works', async (t) => {
  let works = true;
  const c = camera({ rtspWorks: () => works });
  t.equal(await c.tick(), 'ok');
  t.equal(c.router.path, 'rtsp');
  works = false;
  t.same([await c.tick(), await c.tick()], ['CAPTURE_TIMEOUT', 'CAPTURE_TIMEOUT']);
  t.equal(c.router.path, 'rtsp', 'two failures are not enough');
  t.equal(await c.tick(), 'CAPTURE_TIMEOUT');
  t.equal(c.router.path, 'snapshot', 'the third one switches');
  c.calls.length = 0;
  t.same([await c.tick(), await c.tick(), await c.tick()], ['ok', 'ok', 'ok']);
  t.same(c.calls, ['snapshot http://cam/snap.jpg', 'snapshot http://cam/snap.jpg', 'snapshot http://cam/snap.jpg']);
  t.equal(await c.tick(), 'CAPTURE_TIMEOUT', 'the 4th capture tries RTSP, which still fails');
  t.equal(c.router.path, 'snapshot');
  works = true;
  for (let i = 0; i < 3; i++) await c.tick();
  c.calls.length = 0;
  t.equal(await c.tick(), 'ok');
  t.same(c.calls, ['rtsp rtsp://cam/stream'], 'RTSP tried again, and it works');
  t.equal(c.router.path, 'rtsp', 'back to RTSP');
});

t.test('no fallback for failures that are not the camera, without a snapshot URI, or in a fixed mode', async (t) => {
  const full = camera({ rtspWorks: () => false, failCode: 'DISK_FULL' });
  for (let i = 0; i < 5; i++) await full.tick();
  t.equal(full.router.path, 'rtsp', 'a full disk says nothing about RTSP');
  const none = camera({ rtspWorks: () => false, snapshotUrl: undefined });
  for (let i = 0; i < 5; i++) await none.tick();
  t.equal(none.router.path, 'rtsp', 'nothing to fall back to');
  const fixed = camera({ rtspWorks: () => false, mode: 'rtsp' });
  for (let i = 0; i < 5; i++) await fixed.tick();
  t.equal(fixed.router.path, 'rtsp', 'mode rtsp never switches');
  const snap = camera({ rtspWorks: () => true, mode: 'snapshot' });
  for (let i = 0; i < 5; i++) await snap.tick();
  t.same(new Set(snap.calls), new Set(['snapshot http://cam/snap.jpg']), 'mode snapshot never tries RTSP');
  t.throws(() => new CaptureRouter({ mode: 'snapshot', rtspUrl: 'rtsp://x', snapshotUrl: undefined, log: silentLogger() }), /needs a snapshot URI/);
});
