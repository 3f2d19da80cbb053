import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import sharp from 'sharp';
import { ANIMALS, anyInteresting, COCO_LABELS, interesting, PERSON, VEHICLES } from '../src/detect/coco.js';
import { DETECTOR_ERRORS, DetectorError, WorkerDetector, type Detection } from '../src/detect/object-detector.js';

// The real detector (Human's COCO model on tfjs WASM, in a worker thread) on real images: a
// photo with people, empty test patterns, broken JPEGs; and how the worker is supervised
// (time limit, crash, queue, abort, close). No doubles: a crash comes from a fixture worker
// that wraps the real one.

const execFileP = promisify(execFile);
/** The worker that object-detector.ts starts; a fixture below wraps it. */
const WORKER_URL = new URL('../src/detect/detector-worker.ts', import.meta.url);
const DETECTOR_URL = new URL('../src/detect/object-detector.ts', import.meta.url);

/** Human's sample collage (1280x1158): a row of thumbnails over a group photo. */
function samplesJpeg(): Buffer {
  // The package's exports map hides its files from require.resolve; its main entry is in dist/.
  const main = createRequire(import.meta.url).resolve('@vladmandic/human');
  return readFileSync(join(dirname(main), '..', 'assets', 'samples.jpg'));
}

/** The collage's third thumbnail, a man at a dinner table, scaled to width x height. */
function dinnerJpeg(samples: Buffer, width: number, height: number): Promise<Buffer> {
  return sharp(samples).extract({ left: 326, top: 0, width: 211, height: 157 }).resize(width, height, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
}

/** ffmpeg's testsrc2 pattern: colour bars, a moving shape and counters, nothing the model knows. */
async function testPatternJpeg(): Promise<Buffer> {
  const { stdout } = await execFileP(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x480', '-frames:v', '1', '-f', 'image2pipe', '-vcodec', 'mjpeg', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 10 * 1024 * 1024 },
  );
  return stdout;
}

function plainJpeg(width: number, height: number, grey: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: grey, g: grey, b: grey } } }).jpeg().toBuffer();
}

function gradientJpeg(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = Math.round((255 * x) / width);
      raw[i + 1] = Math.round((255 * y) / height);
      raw[i + 2] = 128;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg().toBuffer();
}

function assertBoxInside(t: Test, d: Detection, width: number, height: number): void {
  const [x, y, w, h] = d.box;
  t.ok(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= width && y + h <= height, `${d.label} box ${d.box.join(',')} lies inside ${width}x${height}`);
}

async function rejectsWith(t: Test, p: Promise<unknown>, code: string, what: string): Promise<DetectorError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  t.type(err, DetectorError, `${what}: a DetectorError`);
  t.equal((err as DetectorError).code, code, `${what}: ${code}`);
  return err as DetectorError;
}

t.test('coco: people, vehicles and animals are counted, scenery is not', async (t) => {
  const d = (label: string): Detection => ({ label, score: 0.9, box: [0, 0, 1, 1] });
  const n = interesting([d('person'), d('person'), d('car'), d('bicycle'), d('dog'), d('bird'), d('cup'), d('train'), d('chair')]);
  t.same(n, { people: 2, vehicles: 2, animals: 2 });
  t.ok(anyInteresting(n));
  t.same(interesting([d('cup'), d('dining table')]), { people: 0, vehicles: 0, animals: 0 });
  t.notOk(anyInteresting(interesting([])));
  t.equal(COCO_LABELS.length, 80);
  for (const label of [PERSON, ...VEHICLES, ...ANIMALS]) t.ok(COCO_LABELS.includes(label), `${label} is a COCO class`);
});

t.test('error codes: which are worth a retry', async (t) => {
  t.same(
    Object.fromEntries(Object.entries(DETECTOR_ERRORS).map(([code, v]) => [code, v.retryable])),
    {
      DETECTOR_BAD_IMAGE: false,
      DETECTOR_TIMEOUT: true,
      DETECTOR_FAILED: true,
      DETECTOR_BUSY: true,
      DETECTOR_ABORTED: false,
      DETECTOR_CLOSED: false,
    },
  );
  const e = new DetectorError('DETECTOR_TIMEOUT', 'slow');
  t.equal(e.retryable, true);
  t.equal(e.name, 'DetectorError');
});

t.test('bad options are refused before any worker starts, naming the option', async (t) => {
  await t.rejects(WorkerDetector.start({ minScore: 1.5 }), { code: 'CONFIG_INVALID', message: /minScore/ });
  await t.rejects(WorkerDetector.start({ timeoutMs: 0 }), { code: 'CONFIG_INVALID', message: /timeoutMs/ });
  await t.rejects(WorkerDetector.start({ maxQueue: 2.5 }), { code: 'CONFIG_INVALID', message: /maxQueue/ });
});

t.test('the real detector', async (t) => {
  const detector = await WorkerDetector.start({ minScore: 0.35 });
  t.teardown(() => detector.close());
  const samples = samplesJpeg();
  t.equal(detector.status().ready, true);

  t.test('finds people in the sample photo, boxes in its own pixels', async (t) => {
    const found = await detector.detect(samples);
    const people = found.filter((d) => d.label === 'person');
    t.ok(people.length >= 1, `people found: ${people.length}`);
    for (const d of found) {
      t.ok(d.score >= 0.35 && d.score <= 1, `${d.label} scores ${d.score}, at least minScore`);
      assertBoxInside(t, d, 1280, 1158);
    }
    t.ok(people.some((d) => d.box[1] > 300), 'a person in the group photo, below the thumbnail row');
  });

  t.test('finds the man at the dinner table; boxes scale back to the size given', async (t) => {
    const small = await detector.detect(await dinnerJpeg(samples, 630, 480));
    const person = small.find((d) => d.label === 'person');
    t.ok(person, 'a person at 630x480');
    assertBoxInside(t, person!, 630, 480);
    const [x, y, w, h] = person!.box;
    t.ok(x < 315 && x + w > 315 && y < 240 && y + h > 120, `the box ${person!.box.join(',')} covers the middle, where he sits`);
    t.ok(w * h > 0.2 * 630 * 480, 'and a good part of the frame');

    // The same scene at twice the size is scaled down to 640 px for the model: the box
    // comes back in the large image's pixels, about twice the small one.
    const large = await detector.detect(await dinnerJpeg(samples, 1260, 960));
    const big = large.find((d) => d.label === 'person');
    t.ok(big, 'a person at 1260x960');
    assertBoxInside(t, big!, 1260, 960);
    for (let i = 0; i < 4; i++) {
      t.ok(Math.abs(big!.box[i]! - 2 * person!.box[i]!) <= 0.05 * 1260, `box[${i}]: ${big!.box[i]} is about 2 x ${person!.box[i]}`);
    }
    t.same(interesting(large), { people: 1, vehicles: 0, animals: 0 }, 'one person, no vehicle, no animal');
  });

  t.test('finds nothing in empty test patterns', async (t) => {
    t.same(await detector.detect(await testPatternJpeg()), [], 'ffmpeg testsrc2 640x480');
    t.same(await detector.detect(await plainJpeg(640, 480, 128)), [], 'plain grey');
    t.same(await detector.detect(await plainJpeg(1280, 720, 0)), [], 'plain black 1280x720');
    t.same(await detector.detect(await gradientJpeg(640, 480)), [], 'a colour gradient');
  });

  t.test('a greyscale JPEG is analysed as colour', async (t) => {
    const grey = await sharp(await dinnerJpeg(samples, 630, 480)).greyscale().toColourspace('b-w').jpeg().toBuffer();
    t.equal((await sharp(grey).metadata()).channels, 1, 'the test image has one channel');
    const found = await detector.detect(grey);
    t.ok(found.some((d) => d.label === 'person'), 'the person is still found');
  });

  t.test('broken images fail with DETECTOR_BAD_IMAGE and the worker carries on', async (t) => {
    const good = await dinnerJpeg(samples, 630, 480);
    const restartsBefore = detector.status().restarts;
    await rejectsWith(t, detector.detect(good.subarray(0, good.length >> 1)), 'DETECTOR_BAD_IMAGE', 'truncated');
    await rejectsWith(t, detector.detect(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 255))), 'DETECTOR_BAD_IMAGE', 'random bytes');
    await rejectsWith(t, detector.detect(Buffer.alloc(0)), 'DETECTOR_BAD_IMAGE', 'empty');
    // Start and end markers in place, so only the worker's decode can tell: a JPEG whose
    // middle is overwritten, and a PNG dressed with JPEG markers.
    const mangled = Buffer.from(good);
    mangled.fill(0xaa, 200, mangled.length - 200);
    await rejectsWith(t, detector.detect(mangled), 'DETECTOR_BAD_IMAGE', 'corrupt middle');
    const png = await sharp(good).png().toBuffer();
    await rejectsWith(t, detector.detect(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), png, Buffer.from([0xff, 0xd9])])), 'DETECTOR_BAD_IMAGE', 'not a JPEG inside');
    const after = await detector.detect(good);
    t.ok(after.some((d) => d.label === 'person'), 'a good image right after works');
    t.equal(detector.status().restarts, restartsBefore, 'on the same worker');
  });

  t.test('requests queue and answer in order; an aborted one leaves the queue', async (t) => {
    const person = await dinnerJpeg(samples, 630, 480);
    const empty = await plainJpeg(640, 480, 128);
    const ac = new AbortController();
    const order: string[] = [];
    const a = detector.detect(person).then((r) => (order.push('a'), r));
    const b = detector.detect(empty, ac.signal);
    const c = detector.detect(empty).then((r) => (order.push('c'), r));
    t.equal(detector.status().queued, 2, 'b and c wait while a runs');
    ac.abort();
    await rejectsWith(t, b, 'DETECTOR_ABORTED', 'aborted while queued');
    t.equal(detector.status().queued, 1, 'b left the queue');
    const [ra, rc] = await Promise.all([a, c]);
    t.ok(ra.some((d) => d.label === 'person'), 'a: the person');
    t.same(rc, [], 'c: nothing');
    t.same(order, ['a', 'c']);
    await rejectsWith(t, detector.detect(person, AbortSignal.abort()), 'DETECTOR_ABORTED', 'aborted before the call');
  });

  t.test('the main thread keeps running while the worker detects', async (t) => {
    const image = await dinnerJpeg(samples, 1260, 960);
    let last = performance.now();
    let maxGap = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const calls: number[] = [];
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      await detector.detect(image);
      calls.push(performance.now() - t0);
    }
    clearInterval(timer);
    const took = calls.reduce((a, b) => a + b, 0);
    const shortest = Math.min(...calls);
    t.comment(`4 detections of ${calls.map(Math.round).join(', ')} ms; the 5 ms timer ticked ${ticks} times, longest gap ${maxGap.toFixed(1)} ms`);
    // On the main thread each detection would stall the timer for its whole length; a busy
    // machine slows both alike, so compare the two.
    t.ok(maxGap < shortest / 2, `longest timer gap ${maxGap.toFixed(1)} ms, under half the shortest detection (${Math.round(shortest)} ms)`);
    t.ok(ticks >= took / 25, `the timer kept ticking (${ticks} ticks in ${Math.round(took)} ms)`);
  });

  t.test('a detection over its time limit fails with DETECTOR_TIMEOUT; the next one runs on a new worker', async (t) => {
    const image = await dinnerJpeg(samples, 630, 480);
    const before = detector.status().restarts;
    const err = await rejectsWith(t, detector.detect(image, undefined, { timeoutMs: 1 }), 'DETECTOR_TIMEOUT', 'a 1 ms limit');
    t.equal(err.retryable, true);
    t.equal(detector.status().ready, false, 'the worker was ended');
    const found = await detector.detect(image);
    t.ok(found.some((d) => d.label === 'person'), 'the next detection works');
    t.equal(detector.status().restarts, before + 1, 'on a restarted worker');
    t.equal(detector.status().ready, true);
  });
});

t.test('a worker that crashes fails what is pending; the next call restarts it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-detector-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The real worker, plus a listener that ends the thread when an image carries a marker.
  const fixture = join(dir, 'crashing-worker.mjs');
  writeFileSync(
    fixture,
    [
      "import { parentPort } from 'node:worker_threads';",
      "parentPort.on('message', (m) => { if (Buffer.from(m.jpeg).includes('vigil-crash-here')) process.exit(7); });",
      `await import(${JSON.stringify(WORKER_URL.href)});`,
      "console.log('a line the library printed');",
    ].join('\n'),
  );
  const logs: Array<{ msg: string; output?: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const detector = await WorkerDetector.start({ workerUrl: pathToFileURL(fixture), maxQueue: 1, logger });
  t.teardown(() => detector.close());
  const good = await dinnerJpeg(samplesJpeg(), 630, 480);
  const crash = Buffer.concat([good.subarray(0, good.length - 2), Buffer.from('vigil-crash-here'), Buffer.from([0xff, 0xd9])]);

  const crashing = detector.detect(crash);
  const waiting = detector.detect(good);
  await rejectsWith(t, detector.detect(good), 'DETECTOR_BUSY', 'a third request, with maxQueue 1');
  const e1 = await rejectsWith(t, crashing, 'DETECTOR_FAILED', 'the image it died on');
  t.match(e1.message, /exited \(code 7\)/);
  await rejectsWith(t, waiting, 'DETECTOR_FAILED', 'the request that waited');
  t.equal(detector.status().ready, false);
  const found = await detector.detect(good);
  t.ok(found.some((d) => d.label === 'person'), 'the next call restarts the worker and works');
  t.equal(detector.status().restarts, 1);
  const printed = logs.find((l) => l.msg === 'detector worker output');
  t.equal(printed?.output, 'a line the library printed', "the worker's console output reaches the log");
  t.ok(logs.some((l) => l.msg.includes('worker died')), 'the crash is logged');
});

t.test('a worker that cannot load fails start() with DETECTOR_FAILED', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-detector-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fixture = join(dir, 'broken-worker.mjs');
  writeFileSync(fixture, "throw new Error('no model here');\n");
  const err = await rejectsWith(t, WorkerDetector.start({ workerUrl: pathToFileURL(fixture) }), 'DETECTOR_FAILED', 'start');
  t.match(err.message, /no model here/);
});

t.test('close() fails waiting requests and later calls with DETECTOR_CLOSED', async (t) => {
  const detector = await WorkerDetector.start();
  const image = await plainJpeg(640, 480, 90);
  const running = rejectsWith(t, detector.detect(image), 'DETECTOR_CLOSED', 'the running request');
  const waiting = rejectsWith(t, detector.detect(image), 'DETECTOR_CLOSED', 'the waiting request');
  await detector.close();
  await Promise.all([running, waiting]);
  await rejectsWith(t, detector.detect(image), 'DETECTOR_CLOSED', 'a call after close');
  t.equal(detector.status().ready, false);
});

t.test('an idle detector does not keep the process alive', async (t) => {
  // A server closes its detector on shutdown; a script that forgets to must still end.
  const dir = mkdtempSync(join(tmpdir(), 'vigil-detector-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'forgets-close.mjs');
  writeFileSync(
    script,
    [
      `import { WorkerDetector } from ${JSON.stringify(DETECTOR_URL.href)};`,
      'const d = await WorkerDetector.start();',
      "const found = await d.detect(Buffer.from(process.argv[2], 'base64'));",
      'console.log(`found ${found.length}`);',
    ].join('\n'),
  );
  const jpeg = await dinnerJpeg(samplesJpeg(), 630, 480);
  // process.execArgv carries tap's TypeScript loader, so the child can import the .ts source.
  const child = spawn(process.execPath, [...process.execArgv, script, jpeg.toString('base64')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(killer);
  t.equal(signal, null, 'not killed after 30 s');
  t.equal(code, 0);
  t.match(out, /found [1-9]/, 'it detected before it ended');
});
