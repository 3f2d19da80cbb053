// Shared test fixtures: a real cloud on 127.0.0.1 port 0 over a temp data dir, a fake clock,
// an HTTP client (undici), real JPEGs made with sharp, and heartbeats.
import {
  dhash,
  DHASH_HEIGHT,
  DHASH_WIDTH,
  type CameraInventoryItem,
  type CameraInventoryResponse,
  type ClaimResponse,
  type ErrorBody,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type PresignRequest,
  type PresignResponse,
  type Variant,
} from '@vigil/protocol';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Test } from 'tap';
import { request } from 'undici';
import type { CloudConfigInput } from '../src/config.js';
import { systemSleep, type Sleep } from '../src/lib/clock.js';
import { OBJECTS_DIR, startCloud, type CloudDeps, type RunningCloud } from '../src/main.js';
import { hashPassword, type ScryptParams } from '../src/users/passwords.js';
import type { FolderStore } from '../src/objects/folder-store.js';
import { testDatabaseUrl } from '../../test/helpers/postgres.js';

interface Tap {
  teardown(fn: () => unknown): void;
}

/** What a test cloud runs on: its wall clock, the sleep its loops use, and a way to move time. */
export interface TestClock {
  now: () => number;
  sleep: Sleep;
  advance(ms: number): Promise<void>;
}

/**
 * Time that moves only when told to. advance() jumps at once (so a request made right after
 * it, awaited or not, sees the new time); loops whose sleep is now over wake, in order, and
 * get a turn of the event loop before advance() resolves. Work they start that waits on real
 * I/O (a webhook) may still be under way: wait for its effect with eventually().
 */
export class FakeClock implements TestClock {
  #t: number;
  readonly #sleepers = new Set<{ at: number; resolve: () => void }>();

  constructor(start = Date.UTC(2025, 0, 1)) {
    this.#t = start;
  }

  readonly now = (): number => this.#t;

  readonly sleep: Sleep = (ms, signal) =>
    new Promise((resolve) => {
      // Nothing to wait for: like a real zero timer, done without anyone advancing the clock.
      if (signal?.aborted || ms <= 0) return resolve();
      const s = { at: this.#t + ms, resolve };
      this.#sleepers.add(s);
      signal?.addEventListener(
        'abort',
        () => {
          this.#sleepers.delete(s);
          resolve();
        },
        { once: true },
      );
    });

  async advance(ms: number): Promise<void> {
    this.#t += ms;
    const due = [...this.#sleepers].filter((s) => s.at <= this.#t).sort((a, b) => a.at - b.at);
    for (const s of due) {
      this.#sleepers.delete(s);
      s.resolve();
    }
    await new Promise((r) => setImmediate(r));
  }
}

export function fakeClock(start?: number): FakeClock {
  return new FakeClock(start);
}

/** The real clock, for tests that share the data dir with the CLI (which uses real time). */
export function realClock(): TestClock {
  return { now: Date.now, sleep: systemSleep, advance: async () => undefined };
}

/** Polls `check` (real time, briefly) until it holds; for effects of background work. */
export async function eventually<T>(check: () => T | Promise<T>, what = 'condition', timeoutMs = 5_000): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as Exclude<T, false | null | undefined | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function tempDir(t: Tap, prefix = 'vigil-cloud-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface TestCloud extends RunningCloud {
  clock: TestClock;
  dataDir: string;
  /** Test clouds keep objects in the folder store. */
  folder: FolderStore;
  /** The folder store's directory. */
  objectsDir: string;
}

/** Jitter off: retry delays are exactly the backoff ladder's. */
const NO_JITTER = () => 0.5;

/**
 * A cloud on loopback over a temp data dir. The object detector is off unless `deps` gives one
 * (the tests that are about analysis do): loading its model costs a second and the frames most
 * tests upload are not pictures of anything.
 */
export async function startTestCloud(
  t: Tap,
  overrides: Partial<CloudConfigInput> = {},
  clock: TestClock = fakeClock(),
  deps: Pick<CloudDeps, 'analyser' | 'detector' | 'logger'> = {},
): Promise<TestCloud> {
  const dataDir = overrides.dataDir ?? tempDir(t);
  const databaseUrl = overrides.databaseUrl ?? (await testDatabaseUrl(t, dataDir));
  const cloud = await startCloud({ port: 0, logLevel: 'silent', ...overrides, dataDir, ...(databaseUrl ? { databaseUrl } : {}) }, { now: clock.now, sleep: clock.sleep, random: NO_JITTER, detector: null, ...deps });
  t.teardown(() => cloud.close());
  const folder = cloud.folder;
  if (!folder) throw new Error('a test cloud keeps its objects in the folder store');
  return Object.assign(cloud, { clock, dataDir, folder, objectsDir: join(dataDir, OBJECTS_DIR) });
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

/** A healthy heartbeat with one camera ("cam-a"), patched by `o`. */
export function heartbeatBody(o: Partial<HeartbeatRequest> = {}): HeartbeatRequest {
  return {
    sentAt: 1_700_000_000_000,
    agentVersion: '0.1.0',
    firmware: { version: '2025.01.1', slot: 'A', trial: false },
    uptimeS: 3600,
    agentUptimeS: 3500,
    lastReboot: { reason: 'planned', detail: null },
    verdict: 'nominal',
    verdictReason: null,
    problems: [],
    escalation: [],
    cameras: [{ camera: 'cam-a', name: 'Front door', state: 'ok', lastCaptureAt: 1_700_000_000_000, capturesOk: 120, failures: 0, lastError: null }],
    queue: [],
    deadLetters: 0,
    evictions: 0,
    disk: { totalBytes: 16e9, freeBytes: 12e9 },
    memory: { rssBytes: 80e6, heapUsedBytes: 40e6 },
    clock: 'synced',
    logs: [],
    ...o,
  };
}

/** POST /v1/heartbeat; the body is a HeartbeatResponse, or an ErrorBody when refused. */
export async function sendHeartbeat(cloud: RunningCloud, token: string, body: unknown = heartbeatBody()): Promise<Res<HeartbeatResponse & Partial<ErrorBody>>> {
  return http(cloud.url, 'POST', '/v1/heartbeat', { token, json: body });
}

/** One camera of an inventory: "cam-a", found by ONVIF and present, patched by `o`. */
export function inventoryItem(o: Partial<CameraInventoryItem> = {}): CameraInventoryItem {
  return {
    camera: 'cam-a',
    name: 'Front door',
    source: 'onvif',
    manufacturer: 'Axis',
    model: 'M3106-L Mk II',
    firmware: '10.12.1',
    serial: 'ACCC8E123456',
    mac: 'ac:cc:8e:12:34:56',
    address: '192.168.1.20',
    capturePath: 'rtsp',
    present: true,
    lastError: null,
    lastSeenAt: 1_700_000_000_000,
    ...o,
  };
}

/** PUT /v1/cameras/inventory; the body is a CameraInventoryResponse, or an ErrorBody when refused. */
export async function sendInventory(cloud: RunningCloud, token: string, body: unknown): Promise<Res<CameraInventoryResponse & Partial<ErrorBody>>> {
  return http(cloud.url, 'PUT', '/v1/cameras/inventory', { token, json: body });
}

/** Alerts as the admin API lists them (state: open | closed | all). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read bodies loosely
export async function listAlerts(cloud: RunningCloud, query = 'state=all'): Promise<any[]> {
  const res = await http(cloud.url, 'GET', `/admin/v1/alerts?${query}`, { token: cloud.adminToken });
  if (res.status !== 200) throw new Error(`alerts: ${res.status} ${res.raw.toString()}`);
  return res.body;
}

/** The dashboard user loginDashboard makes (once per cloud) and its password. */
export const DASHBOARD_USER = 'admin';
export const DASHBOARD_PASSWORD = 'correct horse battery';
/** A cheap scrypt setting for test users (the string carries it, so logins verify the same way). */
export const TEST_SCRYPT: ScryptParams = { N: 1024, r: 8, p: 1 };

/** Makes a dashboard user directly in the cloud's store, with a cheap hash (keeps tests fast). */
export async function addDashboardUser(cloud: TestCloud, name = DASHBOARD_USER, password = DASHBOARD_PASSWORD): Promise<void> {
  const passwordHash = await hashPassword(password, TEST_SCRYPT);
  if (!(await cloud.store.users.createUser({ id: `usr_test_${name}`, name, passwordHash, role: 'admin', now: cloud.clock.now() }))) throw new Error(`user ${name} exists`);
}

/**
 * Logs in to the dashboard as DASHBOARD_USER (made on first use) through POST /login; returns
 * the Cookie header value ("vigil_session=…") to send with the dashboard's requests.
 */
export async function loginDashboard(cloud: TestCloud, t?: Pick<Test, 'equal'>): Promise<string> {
  if (!(await cloud.store.users.findUser(DASHBOARD_USER))) await addDashboardUser(cloud);
  const body = new URLSearchParams({ user: DASHBOARD_USER, password: DASHBOARD_PASSWORD }).toString();
  const res = await http(cloud.url, 'POST', '/login', { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t?.equal(res.status, 303, 'logged in to the dashboard');
  const cookie = /^(vigil_session=[^;]+)/.exec(String(res.headers['set-cookie'] ?? ''))?.[1];
  if (res.status !== 303 || !cookie) throw new Error(`dashboard login: ${res.status} ${res.raw.toString().slice(0, 200)}`);
  return cookie;
}
