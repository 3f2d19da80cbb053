// ffmpeg is not trusted: fake ffmpeg scripts exit 0 with bad outputs, fail with messages, or
// ignore SIGTERM, and each case must end in its stable code with nothing left behind.
import { chmod, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  CAPTURE_ERROR_RETRYABLE,
  redactSecrets,
  redactUrlCredentials,
} from '../src/capture/capture-errors.js';
import { captureFrame, ffmpegArgs, urlWithCredentials } from '../src/capture/ffmpeg-capture.js';
import { errorCode } from '../src/lib/errors.js';
import { tmpDir } from '../../test/helpers/tmp.js';
import { isAlive } from '../../test/helpers/process.js';

const JPEG = String.raw`\377\330\377\340\000\020JFIF\000\377\331`;
const TRUNCATED = String.raw`\377\330\377\340\000\020JFIF\000\001\002`;

/**
 * A fake ffmpeg: `body` runs with $dir set to the output directory (the last argument is
 * the thumbnail path) and helpers to write each output.
 */
async function fakeFfmpeg(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  const script = `#!/bin/sh
for a in "$@"; do last=$a; done
dir=$(dirname "$last")
orig() { printf "$1" > "$dir/original.jpg"; }
comp() { printf "$1" > "$dir/compressed.jpg"; }
thumb() { head -c "$1" /dev/zero > "$dir/thumb.gray"; }
${body}
`;
  await writeFile(path, script);
  await chmod(path, 0o755);
  return path;
}


t.test('every capture error code has a retry class', async (t) => {
  t.same(CAPTURE_ERROR_RETRYABLE, {
    CAPTURE_TIMEOUT: true,
    CAPTURE_FAILED: true,
    CAPTURE_NO_FRAME: true,
    CAPTURE_CORRUPT: true,
    DISK_FULL: true,
    CAPTURE_ABORTED: false,
  });
});

t.test('fake ffmpeg outcomes map to stable codes, and partial files are removed', async (t) => {
  const bin = await tmpDir(t);
  const work = await tmpDir(t);
  const cases: [name: string, body: string, code: string | null, message?: RegExp][] = [
    ['good', `orig '${JPEG}'; comp '${JPEG}'; thumb 4160`, null],
    ['truncated original', `orig '${TRUNCATED}'; comp '${JPEG}'; thumb 4160`, 'CAPTURE_CORRUPT', /original truncated/],
    ['html instead of jpeg', `orig '<html>401</html>'; comp '${JPEG}'; thumb 4160`, 'CAPTURE_CORRUPT', /original not_jpeg/],
    ['short thumbnail', `orig '${JPEG}'; comp '${JPEG}'; thumb 100`, 'CAPTURE_CORRUPT', /thumbnail 100 bytes/],
    ['no output, exit 0', 'exit 0', 'CAPTURE_NO_FRAME'],
    ['empty outputs, exit 0', `: > "$dir/original.jpg"; : > "$dir/compressed.jpg"; thumb 0`, 'CAPTURE_NO_FRAME'],
    ['missing compressed', `orig '${JPEG}'; thumb 4160`, 'CAPTURE_CORRUPT', /compressed missing/],
    ['exit 1', `echo 'Connection refused' >&2; exit 1`, 'CAPTURE_FAILED', /exited with code 1: Connection refused/],
    ['disk full', `orig '${TRUNCATED}'; echo 'av_interleaved_write_frame(): No space left on device' >&2; exit 0`, 'DISK_FULL'],
    ['killed by a signal', 'kill -SEGV $$', 'CAPTURE_FAILED', /killed by SIGSEGV/],
  ];
  for (const [name, body, code, message] of cases) {
    const ffmpegPath = await fakeFfmpeg(bin, `ffmpeg-${name.replace(/\W+/g, '-')}`, body);
    const workDir = join(work, name.replace(/\W+/g, '-'));
    const res = await captureFrame({ url: 'rtsp://127.0.0.1:9/cam', workDir, ffmpegPath, timeoutMs: 10_000 }).then(
      (r) => ({ ok: r }),
      (err: Error) => ({ err }),
    );
    if (code === null) {
      t.ok('ok' in res, `${name}: succeeds`);
      if ('ok' in res) t.equal(res.ok.dhash, '0'.repeat(1024), `${name}: flat thumbnail hashes to zeros`);
      t.same((await readdir(workDir)).sort(), ['compressed.jpg', 'original.jpg'], `${name}: thumbnail consumed`);
      continue;
    }
    t.ok('err' in res, `${name}: rejects`);
    if (!('err' in res)) continue;
    t.equal(errorCode(res.err), code, `${name}: ${code} (${res.err.message})`);
    if (message) t.match(res.err.message, message, `${name}: says why`);
    t.same(await readdir(workDir), [], `${name}: no files left`);
  }
});

t.test('an ffmpeg that ignores SIGTERM is SIGKILLed at the hard timeout, children too', async (t) => {
  const bin = await tmpDir(t);
  const work = await tmpDir(t);
  // A wrapper that does not exec: a grandchild holds stderr open. Killing only the direct
  // child would leave the capture waiting on the grandchild.
  const ffmpegPath = await fakeFfmpeg(bin, 'ffmpeg-stubborn', `trap '' TERM\norig '${TRUNCATED}'\nsleep 600\n`);
  let pid = 0;
  const started = performance.now();
  const err = await captureFrame({ url: 'rtsp://127.0.0.1:9/cam', workDir: work, ffmpegPath, timeoutMs: 500, onSpawn: (p) => (pid = p) }).then(
    () => null,
    (e: Error) => e,
  );
  const ms = performance.now() - started;
  t.equal(errorCode(err), 'CAPTURE_TIMEOUT');
  t.ok(ms < 2_000, `settled promptly (${Math.round(ms)} ms)`);
  t.ok(pid > 0 && !isAlive(pid), 'the child is dead');
  t.same(await readdir(work), [], 'partial original removed');
});

t.test('a missing ffmpeg binary is CAPTURE_FAILED, not a crash', async (t) => {
  const work = await tmpDir(t);
  const err = await captureFrame({ url: 'rtsp://127.0.0.1:9/cam', workDir: work, ffmpegPath: join(work, 'no-such-ffmpeg') }).then(
    () => null,
    (e: Error) => e,
  );
  t.equal(errorCode(err), 'CAPTURE_FAILED');
  t.match(err?.message, /ENOENT/);
});

t.test('the ffmpeg command line', async (t) => {
  const out = { original: '/w/original.jpg', compressed: '/w/compressed.jpg', thumbnail: '/w/thumb.gray' };
  const rtsp = ffmpegArgs({ url: 'rtsp://10.0.0.7:554/s1', workDir: '/w', ioTimeoutMs: 2_500 }, out);
  const after = (args: string[], flag: string): string | undefined => args[args.indexOf(flag) + 1];
  t.equal(after(rtsp, '-rtsp_transport'), 'tcp', 'TCP by default');
  t.equal(after(rtsp, '-timeout'), '2500000', 'socket timeout in microseconds');
  t.ok(rtsp.indexOf('-timeout') < rtsp.indexOf('-i'), 'input options come before -i');
  for (const flag of ['-nostdin', '-hide_banner']) t.ok(rtsp.includes(flag), flag);
  t.equal(after(rtsp, '-loglevel'), 'error');
  t.equal(rtsp.filter((a) => a === '-update').length, 2, '-update 1 on both JPEGs');
  t.equal(rtsp.filter((a) => a === '-frames:v').length, 3, 'one frame per output');
  t.same(
    rtsp.filter((_, i) => rtsp[i - 1] === '-q:v'),
    ['2', '18'],
    'original q2, compressed q18',
  );
  t.equal(rtsp.at(-1), out.thumbnail);
  t.equal(after(rtsp, '-pix_fmt'), 'gray');

  const udp = ffmpegArgs({ url: 'rtsp://10.0.0.7/s1', transport: 'udp', workDir: '/w' }, out);
  t.equal(after(udp, '-rtsp_transport'), 'udp', 'per-camera UDP');
  const file = ffmpegArgs({ url: '/tmp/frame.jpg', workDir: '/w' }, out);
  t.notOk(file.includes('-rtsp_transport') || file.includes('-timeout'), 'no network options for a file');

  const creds = ffmpegArgs({ url: 'rtsp://10.0.0.7/s1', username: 'ad min', password: 'p@ss:/#%', workDir: '/w' }, out);
  t.equal(after(creds, '-i'), 'rtsp://ad%20min:p%40ss%3A%2F%23%25@10.0.0.7/s1', 'credentials URL-encoded into the URL');
});

t.test('urlWithCredentials', async (t) => {
  t.equal(urlWithCredentials('rtsp://h/s'), 'rtsp://h/s', 'none given: unchanged');
  t.equal(urlWithCredentials('rtsp://old:pw@h/s', 'u', 'p'), 'rtsp://u:p@h/s', 'replaces existing userinfo');
  t.equal(urlWithCredentials('rtsp://h:554/s?x=@', 'u', 'p'), 'rtsp://u:p@h:554/s?x=@', 'an @ in the query is not userinfo');
  t.equal(urlWithCredentials('rtsp://h/s', 'u'), 'rtsp://u@h/s', 'username only');
  t.equal(urlWithCredentials('/tmp/x.jpg', 'u', 'p'), '/tmp/x.jpg', 'a path has no userinfo');
});

t.test('secrets are redacted', async (t) => {
  t.equal(redactUrlCredentials('open rtsp://admin:s3cret@10.0.0.7:554/a failed'), 'open rtsp://***@10.0.0.7:554/a failed');
  t.equal(redactUrlCredentials('rtsp://a:b@c@h/x'), 'rtsp://***@h/x', 'an unencoded @ in the password');
  t.equal(redactUrlCredentials('rtsp://h/x?a=b@c'), 'rtsp://h/x?a=b@c', 'no userinfo: untouched');
  t.equal(redactSecrets('Digest p@ss:w and p%40ss%3Aw', ['p@ss:w']), 'Digest *** and ***', 'raw and encoded forms');
  t.equal(redactSecrets('nothing', [undefined, '']), 'nothing');
});
