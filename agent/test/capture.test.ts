// Integration: real ffmpeg against the real RTSP test camera (gst-rtsp-server) on loopback,
// a camera that accepts TCP and never answers, and a disk that fills up.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { isDhash } from '@vigil/protocol';
import { captureFrame, type FrameCaptureRequest } from '../src/capture/ffmpeg-capture.js';
import { errorCode } from '../src/lib/errors.js';
import { startRtspCamera, startSilentCamera } from '../../test/helpers/rtsp-camera.js';
import { tinyTmpfs, tmpDir } from '../../test/helpers/tmp.js';
import { isAlive } from '../../test/helpers/process.js';

const run = promisify(execFile);

/** Width and height from a JPEG's start-of-frame marker (baseline or progressive). */
function jpegSize(buf: Buffer): { width: number; height: number } {
  let i = 2;
  while (i + 9 < buf.length) {
    if (buf[i] !== 0xff) throw new Error(`bad JPEG marker at ${i}`);
    const marker = buf[i + 1]!;
    const len = buf.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    }
    i += 2 + len;
  }
  throw new Error('no SOF marker');
}

async function sizeOf(path: string): Promise<string> {
  const { width, height } = jpegSize(await readFile(path));
  return `${width}x${height}`;
}


/** A still JPEG made by ffmpeg's test source (for inputs that must not move). */
async function stillJpeg(dir: string, size: string, name = `still-${size}.jpg`): Promise<string> {
  const path = join(dir, name);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=1`, '-frames:v', '1', '-q:v', '2', '-update', '1', path]);
  return path;
}

async function rejectsWith(t: Test, p: Promise<unknown>, codes: string[]): Promise<Error> {
  const err = await p.then(
    () => null,
    (e: unknown) => e as Error,
  );
  t.ok(err, 'rejects');
  t.ok(err && codes.includes(errorCode(err) ?? ''), `code ${errorCode(err)} is one of ${codes.join('|')}: ${err?.message}`);
  return err ?? new Error('resolved');
}

t.test('RTSP 1280x720: original full size, compressed 1024 wide, dHash; moving pattern changes the hash', async (t) => {
  const cam = await startRtspCamera(t, { size: '1280x720' });
  const dir = await tmpDir(t);
  const req = (n: number): FrameCaptureRequest => ({ url: cam.url(), workDir: join(dir, `c${n}`), timeoutMs: 20_000, ioTimeoutMs: 5_000 });

  const first = await captureFrame(req(1));
  t.comment(`RTSP capture took ${Math.round(first.elapsedMs)} ms`);
  t.equal(await sizeOf(first.files.original), '1280x720', 'original at full resolution');
  t.equal(await sizeOf(first.files.compressed), '1024x576', 'compressed: longest edge 1024, aspect kept');
  t.ok(isDhash(first.dhash), 'dHash is 1024 hex chars');
  t.equal(first.dhash.length, 1024);
  t.same((await readdir(join(dir, 'c1'))).sort(), ['compressed.jpg', 'original.jpg'], 'thumbnail removed, JPEGs left for the sink');
  const origBytes = (await readFile(first.files.original)).length;
  const compBytes = (await readFile(first.files.compressed)).length;
  t.ok(compBytes < origBytes, `compressed (${compBytes} B) smaller than original (${origBytes} B)`);

  const second = await captureFrame(req(2));
  t.not(second.dhash, first.dhash, 'the ball moved between captures: different hashes');

  // The same frame twice: capture the saved original as a still input.
  const a = await captureFrame({ url: first.files.original, workDir: join(dir, 's1') });
  const b = await captureFrame({ url: first.files.original, workDir: join(dir, 's2') });
  t.equal(a.dhash, b.dhash, 'the same frame hashes identically');
});

t.test('UDP transport works too', async (t) => {
  const cam = await startRtspCamera(t, { size: '640x360' });
  const dir = await tmpDir(t);
  const res = await captureFrame({ url: cam.url(), transport: 'udp', workDir: dir, timeoutMs: 20_000, ioTimeoutMs: 5_000 });
  t.equal(await sizeOf(res.files.original), '640x360');
  t.equal(await sizeOf(res.files.compressed), '640x360', 'smaller than 1024: not upscaled');
});

t.test('never upscales; portrait frames are bounded by their height', async (t) => {
  const dir = await tmpDir(t);
  const cases: [string, string][] = [
    ['640x360', '640x360'],
    ['1024x768', '1024x768'],
    ['720x1280', '576x1024'],
    ['1920x1080', '1024x576'],
  ];
  for (const [input, want] of cases) {
    const res = await captureFrame({ url: await stillJpeg(dir, input), workDir: join(dir, `out-${input}`) });
    t.equal(await sizeOf(res.files.original), input, `${input}: original untouched`);
    t.equal(await sizeOf(res.files.compressed), want, `${input}: compressed ${want}`);
  }
});

t.test('joining mid-GOP (no SPS/PPS until the next keyframe) still yields a clean frame', async (t) => {
  const dir = await tmpDir(t);
  const full = join(dir, 'full.h264');
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-t', '3',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-x264-params', 'keyint=45:min-keyint=45:scenecut=0', '-f', 'h264', full]);
  // Drop everything up to and including the first IDR slice: the stream now starts with
  // P-slices that reference a PPS nobody has sent, like a camera joined mid-GOP.
  const data = await readFile(full);
  const starts: number[] = [];
  for (let i = 0; i + 3 < data.length; i++) if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) starts.push(i);
  const firstIdr = starts.findIndex((s) => (data[s + 3]! & 0x1f) === 5);
  t.ok(firstIdr >= 0, 'found the first IDR');
  const late = join(dir, 'late.h264');
  await writeFile(late, data.subarray(starts[firstIdr + 1]!));
  const res = await captureFrame({ url: late, workDir: join(dir, 'out'), timeoutMs: 20_000 });
  t.equal(await sizeOf(res.files.original), '640x360', 'decoded once the keyframe came (decode errors before it did not fail the capture)');
  t.ok(isDhash(res.dhash));
});

t.test('digest auth: URL-encoded credentials work; failures never show the password', async (t) => {
  const username = 'admin';
  const password = 'p@ss:w/rd%#1';
  const cam = await startRtspCamera(t, { auth: { username, password } });
  const dir = await tmpDir(t);
  const ok = await captureFrame({ url: cam.url(), username, password, workDir: join(dir, 'ok'), timeoutMs: 20_000, ioTimeoutMs: 5_000 });
  t.ok(isDhash(ok.dhash), 'captured with special characters in the password');

  const none = await rejectsWith(t, captureFrame({ url: cam.url(), workDir: join(dir, 'none'), timeoutMs: 20_000, ioTimeoutMs: 5_000 }), ['CAPTURE_FAILED']);
  t.match(none.message, /401/, 'stderr tail says 401');

  const wrong = 'wrong-secret';
  const bad = await rejectsWith(
    t,
    captureFrame({ url: cam.url(), username, password: wrong, workDir: join(dir, 'bad'), timeoutMs: 20_000, ioTimeoutMs: 5_000 }),
    ['CAPTURE_FAILED'],
  );
  t.notMatch(bad.message, wrong, 'password not in the message');
  t.notMatch(bad.message, 'admin:', 'userinfo not in the message');
  t.notOk(existsSync(join(dir, 'bad', 'original.jpg')), 'no partial files');
});

t.test('camera that accepts TCP and never sends: ffmpeg -timeout fails it, nothing left behind', async (t) => {
  const cam = await startSilentCamera(t);
  const dir = await tmpDir(t);
  let pid = 0;
  const started = performance.now();
  await rejectsWith(
    t,
    captureFrame({ url: cam.url(), workDir: dir, timeoutMs: 8_000, ioTimeoutMs: 1_000, onSpawn: (p) => (pid = p) }),
    ['CAPTURE_FAILED', 'CAPTURE_TIMEOUT'],
  );
  const ms = performance.now() - started;
  t.ok(ms < 8_500, `gave up within the timeout (${Math.round(ms)} ms)`);
  t.ok(pid > 0 && !isAlive(pid), 'ffmpeg is gone');
  t.same(await readdir(dir), [], 'no files left');
  t.equal(cam.accepted, 1, 'ffmpeg did connect');
});

t.test('hard timeout SIGKILLs an ffmpeg that would wait longer (silent camera, long -timeout)', async (t) => {
  const cam = await startSilentCamera(t);
  const dir = await tmpDir(t);
  let pid = 0;
  const started = performance.now();
  const err = await rejectsWith(
    t,
    captureFrame({ url: cam.url(), workDir: dir, timeoutMs: 1_500, ioTimeoutMs: 60_000, onSpawn: (p) => (pid = p) }),
    ['CAPTURE_TIMEOUT'],
  );
  const ms = performance.now() - started;
  t.ok(ms >= 1_400 && ms < 3_000, `rejected at the hard timeout (${Math.round(ms)} ms)`);
  t.equal((err as { retryable?: boolean }).retryable, true, 'a timeout is retryable');
  t.ok(pid > 0 && !isAlive(pid), 'ffmpeg killed');
  t.same(await readdir(dir), [], 'no files left');
  await t.resolves(
    (async () => {
      for (let i = 0; i < 50 && cam.open > 0; i++) await new Promise((r) => setTimeout(r, 20));
      if (cam.open > 0) throw new Error('socket still open');
    })(),
    'the camera saw the connection close',
  );
});

t.test('a stalled RTSP camera (TCP open, no frames) times out and ffmpeg is killed', async (t) => {
  const cam = await startRtspCamera(t, { startStalled: true });
  const dir = await tmpDir(t);
  let pid = 0;
  await rejectsWith(t, captureFrame({ url: cam.url(), workDir: dir, timeoutMs: 2_000, ioTimeoutMs: 30_000, onSpawn: (p) => (pid = p) }), ['CAPTURE_TIMEOUT']);
  t.ok(pid > 0 && !isAlive(pid), 'ffmpeg killed');
  await cam.resume();
  const res = await captureFrame({ url: cam.url(), workDir: dir, timeoutMs: 20_000, ioTimeoutMs: 5_000 });
  t.ok(isDhash(res.dhash), 'captures again once the camera resumes');
  await cam.stall();
  await rejectsWith(t, captureFrame({ url: cam.url(), workDir: join(dir, 'again'), timeoutMs: 1_500, ioTimeoutMs: 30_000 }), ['CAPTURE_TIMEOUT']);
});

t.test('abort kills ffmpeg and rejects CAPTURE_ABORTED', async (t) => {
  const cam = await startSilentCamera(t);
  const dir = await tmpDir(t);
  const ac = new AbortController();
  let pid = 0;
  const p = captureFrame({
    url: cam.url(),
    workDir: dir,
    timeoutMs: 30_000,
    ioTimeoutMs: 30_000,
    signal: ac.signal,
    onSpawn: (x) => {
      pid = x;
      setTimeout(() => ac.abort(), 300);
    },
  });
  const started = performance.now();
  const err = await rejectsWith(t, p, ['CAPTURE_ABORTED']);
  t.ok(performance.now() - started < 2_000, 'promptly');
  t.equal((err as { retryable?: boolean }).retryable, false);
  t.ok(pid > 0 && !isAlive(pid), 'ffmpeg killed');

  await rejectsWith(t, captureFrame({ url: cam.url(), workDir: dir, signal: AbortSignal.abort() }), ['CAPTURE_ABORTED']);
});

t.test('disk full: a capture into a tiny tmpfs fails DISK_FULL and leaves nothing', async (t) => {
  const fs = await tinyTmpfs(t, 64 * 1024);
  if ('skip' in fs) {
    t.pass('disk-full capture', { skip: fs.skip });
    return;
  }
  const src = await tmpDir(t);
  const input = await stillJpeg(src, '1920x1080');
  const out = join(fs.dir, 'cap');
  await rejectsWith(t, captureFrame({ url: input, workDir: out, timeoutMs: 20_000 }), ['DISK_FULL']);
  t.same(await readdir(out), [], 'partial files removed');
});
