// Real JPEG sequences for the analysis tests, made with sharp from a real photograph that ships
// in an npm package (@vladmandic/human's assets/samples.jpg, a collage of people indoors and out):
// a still scene with sensor noise, a person walking across it, the lights going down, a camera
// switching to infrared, and an empty test pattern.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';

/** The package's exports map hides its files from require.resolve; its main entry is in dist/. */
export const SAMPLE_PHOTO = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/human')), '..', 'assets', 'samples.jpg');

export const SCENE_WIDTH = 640;
export const SCENE_HEIGHT = 360;

export interface Raw {
  data: Buffer;
  width: number;
  height: number;
}

/** A still scene: the top-left of the sample photo, at 640×360. */
export async function photoScene(): Promise<Raw> {
  const data = await sharp(SAMPLE_PHOTO).extract({ left: 0, top: 0, width: 640, height: 580 }).resize(SCENE_WIDTH, SCENE_HEIGHT).removeAlpha().raw().toBuffer();
  return { data, width: SCENE_WIDTH, height: SCENE_HEIGHT };
}

/** An empty scene with structure but nothing in it: ffmpeg's testsrc2 pattern, one frame. */
export function testPattern(): Buffer {
  return execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${SCENE_WIDTH}x${SCENE_HEIGHT}`, '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '4', '-']);
}

/** The test pattern as a scene to paste into. */
export async function patternScene(): Promise<Raw> {
  const data = await sharp(testPattern()).removeAlpha().raw().toBuffer();
  return { data, width: SCENE_WIDTH, height: SCENE_HEIGHT };
}

/** The person of the sample's dinner scene, cut out, `height` pixels high (a JPEG to composite). */
export async function person(height: number): Promise<Buffer> {
  return sharp(SAMPLE_PHOTO).extract({ left: 181, top: 19, width: 213, height: 383 }).resize({ height }).jpeg().toBuffer();
}

/** Sensor noise: every channel of every pixel moved by up to ±amp, the same for the same seed. */
export function withNoise(r: Raw, amp: number, seed: number): Raw {
  const out = Buffer.from(r.data);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = Math.max(0, Math.min(255, out[i]! + ((x % (2 * amp + 1)) - amp)));
  }
  return { ...r, data: out };
}

/** `overlay` (an encoded image) pasted at (left, top). */
export async function paste(r: Raw, overlay: Buffer, left: number, top: number): Promise<Raw> {
  const data = await sharp(r.data, { raw: { width: r.width, height: r.height, channels: 3 } }).composite([{ input: overlay, left, top }]).removeAlpha().raw().toBuffer();
  return { ...r, data };
}

/** The lights at `factor` of their brightness. */
export async function dimmed(r: Raw, factor: number): Promise<Raw> {
  const data = await sharp(r.data, { raw: { width: r.width, height: r.height, channels: 3 } }).linear(factor, 0).removeAlpha().raw().toBuffer();
  return { ...r, data };
}

/** What an infrared switch looks like: gray, harder contrast. */
export async function infrared(r: Raw): Promise<Raw> {
  const gray = await sharp(r.data, { raw: { width: r.width, height: r.height, channels: 3 } }).grayscale().linear(1.3, -20).raw().toBuffer();
  const data = Buffer.alloc(r.width * r.height * 3);
  for (let i = 0; i < r.width * r.height; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = gray[i]!;
  return { ...r, data };
}

export async function encode(r: Raw, quality = 75): Promise<Buffer> {
  return sharp(r.data, { raw: { width: r.width, height: r.height, channels: 3 } }).jpeg({ quality }).toBuffer();
}
