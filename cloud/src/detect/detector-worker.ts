// The detector's worker thread: loads Human's COCO model (centernet, shipped inside the
// @vladmandic/human package) on the tfjs WASM backend, then answers one `detect` message at a
// time. Inference takes ~170 ms of solid CPU per frame, so it lives here and never on the
// server's thread. Started by detector-thread.ts.
//
// This file imports no module of the project at run time (`import type` leaves nothing
// behind): the owner finds it next to itself with its own extension, so the same code runs
// as cloud/dist/detect/detector-worker.js and, under tap, as the .ts source.
//
// Nothing here touches the network: the only fetch this thread can make reads the model and
// the .wasm files from the installed packages.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { format } from 'node:util';
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import type { Detection } from './object-detector.js';
import type { DetectRequest, WorkerReply, WorkerSetup } from './worker-protocol.js';

/** The model file, relative to Human's models/ folder. */
const MODEL_FILE = 'centernet.json';

/** What this thread uses of Human (its own types need the whole of tfjs). */
interface HumanTensor {
  readonly shape: number[];
}
interface HumanLike {
  load(): Promise<void>;
  detect(input: HumanTensor): Promise<{ error: string | null; object: HumanObject[] }>;
  tf: {
    getBackend(): string;
    tensor4d(values: Uint8Array, shape: [number, number, number, number], dtype: 'int32'): HumanTensor;
    zeros(shape: [number, number, number, number], dtype: 'int32'): HumanTensor;
    dispose(t: HumanTensor): void;
  };
}
interface HumanObject {
  label: string;
  score: number;
  /** [x, y, w, h] as fractions (0..1) of the input. */
  boxRaw: [number, number, number, number];
}

const port = parentPort;
if (!port) throw new Error('detector-worker.ts runs as a worker thread (see detector-thread.ts)');
const setup = workerData as WorkerSetup;

function send(msg: WorkerReply): void {
  port!.postMessage(msg);
}

// The model library prints its own errors and notices to the console: send them to the
// owner's log instead of raw lines among the server's JSON logs. (Capturing the worker's
// stdout from the owner would do too, but a stream being read keeps the process alive.)
for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
  // eslint-disable-next-line no-console -- replacing the console, not printing to it
  console[method] = (...args: unknown[]) => send({ type: 'log', text: format(...args) });
}

/** The folder of an installed package, found through the package's main entry. */
function packageDir(require: NodeJS.Require, name: string): string {
  // Human's exports map is invalid for subpaths (keys without "./"), so neither
  // require('@vladmandic/human/package.json') nor its dist/ files resolve by name: go up from
  // the main entry to the folder whose package.json carries the name.
  let dir = dirname(require.resolve(name));
  for (;;) {
    try {
      const pkg = require(join(dir, 'package.json')) as { name?: string };
      if (pkg.name === name) return dir;
    } catch {
      // no package.json at this level
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the folder of ${name}`);
    dir = up;
  }
}

/**
 * Node's fetch has no file:// support, and tfjs loads models and .wasm with fetch. Within this
 * thread only, fetch reads files under the given folders and refuses everything else.
 */
function serveFilesOnly(dirs: string[]): void {
  const roots = dirs.map((d) => resolve(d) + sep);
  globalThis.fetch = async (input: string | URL | Request): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith('file://')) throw new Error(`the detector reads local files only, not ${url}`);
    const path = fileURLToPath(url);
    if (!roots.some((r) => path.startsWith(r))) throw new Error(`the detector reads only its model files, not ${path}`);
    const body = await readFile(path);
    const type = path.endsWith('.json') ? 'application/json' : path.endsWith('.wasm') ? 'application/wasm' : 'application/octet-stream';
    return new Response(body, { status: 200, headers: { 'content-type': type } });
  };
}

async function loadHuman(): Promise<HumanLike> {
  const require = createRequire(import.meta.url);
  const humanDir = packageDir(require, '@vladmandic/human');
  const fromHuman = createRequire(join(humanDir, 'package.json'));
  const wasmDir = dirname(fromHuman.resolve('@tensorflow/tfjs-backend-wasm'));
  const modelDir = join(humanDir, 'models');
  serveFilesOnly([modelDir, wasmDir]);
  // The node-wasm build: tfjs-core + converter + the WASM backend, no native tfjs-node.
  const mod = require(join(humanDir, 'dist', 'human.node-wasm.js')) as { Human: new (config: object) => HumanLike };
  const human = new mod.Human({
    backend: 'wasm',
    wasmPath: pathToFileURL(wasmDir).href + '/',
    modelBasePath: pathToFileURL(modelDir).href + '/',
    debug: false,
    async: false,
    warmup: 'none',
    // Every frame is a new scene: no result caching between calls.
    cacheSensitivity: 0,
    filter: { enabled: false },
    face: { enabled: false },
    body: { enabled: false },
    hand: { enabled: false },
    gesture: { enabled: false },
    segmentation: { enabled: false },
    object: {
      enabled: true,
      modelPath: MODEL_FILE,
      minConfidence: setup.minScore,
      maxDetected: setup.maxDetected,
      skipFrames: 0,
      skipTime: 0,
    },
  });
  await human.load();
  // The first inference compiles kernels and takes about twice as long: pay it before ready.
  const blank = human.tf.zeros([1, 480, 640, 3], 'int32');
  try {
    const r = await human.detect(blank);
    if (r.error) throw new Error(`warm-up detection failed: ${r.error}`);
  } finally {
    human.tf.dispose(blank);
  }
  return human;
}

class BadImage extends Error {}

/** Decodes and scales the JPEG; RGB pixels plus the original size. */
async function decode(jpeg: Uint8Array): Promise<{ rgb: Uint8Array; w: number; h: number; width: number; height: number }> {
  try {
    const img = sharp(jpeg, { failOn: 'warning' });
    const meta = await img.metadata();
    if (meta.format !== 'jpeg') throw new Error(`not a JPEG (${meta.format})`);
    if (!meta.width || !meta.height) throw new Error('the JPEG has no size');
    const { data, info } = await img
      .resize({ width: setup.maxSidePx, height: setup.maxSidePx, fit: 'inside', withoutEnlargement: true })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, not 3`);
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), w: info.width, h: info.height, width: meta.width, height: meta.height };
  } catch (err) {
    // libvips repeats its complaint on several lines; the first says it.
    throw new BadImage((err as Error).message.split('\n')[0]);
  }
}

/** A box in fractions of the scaled image, as whole pixels of the original, inside it. */
function toPixels(raw: [number, number, number, number], width: number, height: number): Detection['box'] {
  const x0 = Math.min(width, Math.max(0, Math.round(raw[0] * width)));
  const y0 = Math.min(height, Math.max(0, Math.round(raw[1] * height)));
  const x1 = Math.min(width, Math.max(x0, Math.round((raw[0] + raw[2]) * width)));
  const y1 = Math.min(height, Math.max(y0, Math.round((raw[1] + raw[3]) * height)));
  return [x0, y0, x1 - x0, y1 - y0];
}

async function detect(human: HumanLike, req: DetectRequest): Promise<WorkerReply> {
  const t0 = performance.now();
  let img;
  try {
    img = await decode(req.jpeg);
  } catch (err) {
    return { type: 'error', id: req.id, code: 'DETECTOR_BAD_IMAGE', message: (err as Error).message };
  }
  const input = human.tf.tensor4d(img.rgb, [1, img.h, img.w, 3], 'int32');
  try {
    const r = await human.detect(input);
    if (r.error) return { type: 'error', id: req.id, code: 'DETECTOR_FAILED', message: r.error };
    const detections = r.object.map((o) => ({ label: o.label, score: o.score, box: toPixels(o.boxRaw, img.width, img.height) }));
    return { type: 'result', id: req.id, detections, width: img.width, height: img.height, ms: performance.now() - t0 };
  } catch (err) {
    return { type: 'error', id: req.id, code: 'DETECTOR_FAILED', message: (err as Error).message };
  } finally {
    human.tf.dispose(input);
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  let human: HumanLike;
  try {
    human = await loadHuman();
  } catch (err) {
    send({ type: 'load-failed', message: (err as Error).message });
    port!.close();
    return;
  }
  // One at a time: the owner sends the next request only after this one's reply, and the
  // chain keeps it so even if it did not.
  let chain = Promise.resolve();
  port!.on('message', (req: DetectRequest) => {
    chain = chain
      .then(() => detect(human, req))
      .catch((err: unknown): WorkerReply => ({ type: 'error', id: req.id, code: 'DETECTOR_FAILED', message: String((err as Error)?.message ?? err) }))
      .then(send);
  });
  send({ type: 'ready', loadMs: performance.now() - t0, backend: human.tf.getBackend() });
}

void main();
