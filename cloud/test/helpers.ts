// Shared test fixtures: a real cloud on 127.0.0.1 port 0 over a temp data dir, a fake clock,
// an HTTP client (undici) and real JPEGs made with sharp.
import { dhash, DHASH_HEIGHT, DHASH_WIDTH, type ClaimResponse, type PresignRequest, type PresignResponse, type Variant } from '@vigil/protocol';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { request } from 'undici';
import type { CloudConfigInput } from '../src/config.js';
import { startCloud, type RunningCloud } from '../src/main.js';

interface Tap {
  teardown(fn: () => unknown): void;
}

export interface FakeClock {
  now: () => number;
  advance(ms: number): void;
}

export function fakeClock(start = Date.UTC(2025, 0, 1)): FakeClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

export function tempDir(t: Tap, prefix = 'vigil-cloud-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface TestCloud extends RunningCloud {
  clock: FakeClock;
  dataDir: string;
}

export async function startTestCloud(t: Tap, overrides: Partial<CloudConfigInput> = {}, clock = fakeClock()): Promise<TestCloud> {
  const dataDir = overrides.dataDir ?? tempDir(t);
  const cloud = await startCloud({ port: 0, logLevel: 'silent', ...overrides, dataDir }, { now: clock.now });
  t.teardown(() => cloud.close());
  return Object.assign(cloud, { clock, dataDir });
}

export interface Res<T = unknown> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  raw: Buffer;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read bodies loosely
export async function http<T = any>(
  base: string,
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  o: { token?: string; json?: unknown; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Res<T>> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let body = o.body;
  if (o.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(o.json);
  }
  const res = await request(new URL(path, base), { method, headers, body });
  const raw = Buffer.from(await res.body.arrayBuffer());
  const type = String(res.headers['content-type'] ?? '');
  const parsed = type.startsWith('application/json') && raw.length ? JSON.parse(raw.toString('utf8')) : raw;
  return { status: res.statusCode, headers: res.headers, body: parsed as T, raw };
}

export interface Jpeg {
  bytes: Buffer;
  sha256: string;
  dhash: string;
}

/** A real JPEG with some structure (so sizes and hashes differ per seed). */
export async function makeJpeg(seed = 1, width = 96, height = 64): Promise<Jpeg> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * seed * 31 + (i >> 7) * 17) & 255;
  const bytes = await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
  return describeJpeg(bytes);
}

export async function describeJpeg(bytes: Buffer): Promise<Jpeg> {
  let hash: string;
  try {
    const gray = await sharp(bytes).resize(DHASH_WIDTH, DHASH_HEIGHT, { fit: 'fill' }).grayscale().raw().toBuffer();
    hash = dhash(gray);
  } catch {
    hash = 'a'.repeat(1024); // not decodable: any well-formed hash will do
  }
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex'), dhash: hash };
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export async function issueCode(cloud: RunningCloud, site = 'Cafe Lune', ttlSeconds?: number): Promise<string> {
  const res = await http<{ code: string }>(cloud.url, 'POST', '/admin/v1/claim-codes', { token: cloud.adminToken, json: { site, ttlSeconds } });
  if (res.status !== 201) throw new Error(`claim code: ${res.status} ${res.raw.toString()}`);
  return res.body.code;
}

export async function claimDevice(cloud: RunningCloud, hardwareId = 'hw-1', site = 'Cafe Lune'): Promise<ClaimResponse> {
  const code = await issueCode(cloud, site);
  const res = await http<ClaimResponse>(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId } });
  if (res.status !== 200) throw new Error(`claim: ${res.status} ${res.raw.toString()}`);
  return res.body;
}

export function presignBody(jpeg: Jpeg, o: Partial<PresignRequest> = {}): PresignRequest {
  return { camera: 'cam-a', capturedAt: 1_700_000_000_000, variant: 'compressed' as Variant, bytes: jpeg.bytes.length, sha256: jpeg.sha256, dhash: jpeg.dhash, ...o };
}

export async function presign(cloud: RunningCloud, token: string, body: PresignRequest): Promise<Res<PresignResponse>> {
  return http<PresignResponse>(cloud.url, 'POST', '/v1/uploads/presign', { token, json: body });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read bodies loosely
export async function putObject(cloud: RunningCloud, url: string, body: Buffer, headers: Record<string, string> = { 'content-type': 'image/jpeg' }): Promise<Res<any>> {
  return http(cloud.url, 'PUT', url, { body, headers });
}

/** presign → PUT → complete; returns the frame id. */
export async function uploadFrame(cloud: RunningCloud, token: string, jpeg: Jpeg, o: Partial<PresignRequest> = {}): Promise<string> {
  const p = await presign(cloud, token, presignBody(jpeg, o));
  if (p.status !== 200) throw new Error(`presign: ${p.status} ${p.raw.toString()}`);
  if (p.body.status === 'exists') return p.body.frameId;
  const put = await putObject(cloud, p.body.url, jpeg.bytes, p.body.headers);
  if (put.status !== 200) throw new Error(`put: ${put.status} ${put.raw.toString()}`);
  const c = await http<{ frameId: string }>(cloud.url, 'POST', '/v1/uploads/complete', { token, json: { uploadId: p.body.uploadId } });
  if (c.status !== 200) throw new Error(`complete: ${c.status} ${c.raw.toString()}`);
  return c.body.frameId;
}
