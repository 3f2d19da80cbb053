// The local object detector (cloud/dist/detect) as the cloud runs it, in its worker thread:
// start-up (model load and warm-up), the first detection, steady-state time per frame at
// 640x480 and 1280x720 (scaled to 640 px in the worker), and the process's RSS with the
// model loaded. Frames are a real scene (the dinner-table crop of Human's sample photo).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { WorkerDetector } from '../cloud/dist/detect/object-detector.js';
import { percentile, report } from './lib.ts';

const FRAMES = 20;
const MB = 1024 * 1024;

// Human's exports map hides its files from require.resolve; its main entry is in dist/.
const humanMain = createRequire(join(process.cwd(), 'cloud', 'package.json')).resolve('@vladmandic/human');
const samples = readFileSync(join(dirname(humanMain), '..', 'assets', 'samples.jpg'));
const scene = (width: number, height: number): Promise<Buffer> =>
  sharp(samples).extract({ left: 326, top: 0, width: 211, height: 157 }).resize(width, height, { fit: 'fill' }).jpeg({ quality: 85 }).toBuffer();

const rssBefore = process.memoryUsage().rss;
let t0 = performance.now();
const detector = await WorkerDetector.start();
report('detector_start', Math.round(performance.now() - t0), 'ms');
report('detector_model_load_in_worker', Math.round(detector.status().loadMs ?? 0), 'ms');

const frames = { '640x480': await scene(640, 480), '1280x720': await scene(1280, 720) };
t0 = performance.now();
const first = await detector.detect(frames['640x480']);
report('detector_first_detection_640x480', Math.round(performance.now() - t0), 'ms');
if (!first.some((d) => d.label === 'person')) throw new Error('the bench scene should hold a person');

for (const [size, jpeg] of Object.entries(frames)) {
  const ms: number[] = [];
  for (let i = 0; i < FRAMES; i++) {
    const t = performance.now();
    await detector.detect(jpeg);
    ms.push(performance.now() - t);
  }
  report(`detector_p50_${size}`, percentile(ms, 50), 'ms');
  report(`detector_p95_${size}`, percentile(ms, 95), 'ms');
}

const rss = process.memoryUsage().rss;
report('detector_rss', Math.round(rss / MB), 'MB');
report('detector_rss_added', Math.round((rss - rssBefore) / MB), 'MB');
await detector.close();
