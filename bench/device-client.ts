// What a device says to the cloud, as plain HTTP (the agent's own client is not needed to load
// the cloud): claim, then presign → PUT → complete for each frame, and heartbeats. For benchmarks.
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { dhash, DHASH_HEIGHT, DHASH_WIDTH, VARIANTS, type HeartbeatRequest, type HeartbeatResponse } from '../protocol/dist/index.js';

export interface BenchFrame {
  bytes: Buffer;
  sha256: string;
  dhash: string;
}

/** A JPEG with the hashes a device sends along. */
export async function benchFrame(bytes: Buffer): Promise<BenchFrame> {
  const gray = await sharp(bytes).resize(DHASH_WIDTH, DHASH_HEIGHT, { fit: 'fill' }).grayscale().raw().toBuffer();
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex'), dhash: dhash(gray) };
}

async function call<T>(url: string, init: { method: string; token?: string; json?: unknown }): Promise<T> {
  const res = await fetch(url, {
    method: init.method,
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.json === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method} ${url}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Claims a device at `site` with a new code (the admin token issues it); returns its token. */
export async function claimBenchDevice(cloudUrl: string, adminToken: string, hardwareId: string, site = 'bench'): Promise<string> {
  const { code } = await call<{ code: string }>(`${cloudUrl}/admin/v1/claim-codes`, { method: 'POST', token: adminToken, json: { site } });
  const { token } = await call<{ token: string }>(`${cloudUrl}/v1/claim`, { method: 'POST', json: { code, hardwareId } });
  return token;
}

/** presign → PUT → complete, as the agent's uploader does; returns the frame id. */
export async function uploadBenchFrame(cloudUrl: string, token: string, f: BenchFrame, camera: string, capturedAt: number): Promise<string> {
  const p = await call<{ status: string; frameId?: string; uploadId: string; url: string; method: string; headers: Record<string, string> }>(`${cloudUrl}/v1/uploads/presign`, {
    method: 'POST',
    token,
    json: { camera, capturedAt, variant: 'compressed', bytes: f.bytes.length, sha256: f.sha256, dhash: f.dhash },
  });
  if (p.status === 'exists') return p.frameId!;
  const put = await fetch(new URL(p.url, cloudUrl), { method: p.method, headers: p.headers, body: f.bytes });
  if (!put.ok) throw new Error(`PUT: ${put.status} ${await put.text()}`);
  const c = await call<{ frameId: string }>(`${cloudUrl}/v1/uploads/complete`, { method: 'POST', token, json: { uploadId: p.uploadId } });
  return c.frameId;
}

/**
 * A valid heartbeat from a healthy one-camera device, as the agent sends it: the camera
 * capturing, both upload queues empty, nothing to escalate.
 */
export function benchHeartbeat(camera: string, o: { sentAt: number; uptimeS: number; capturesOk: number }): HeartbeatRequest {
  return {
    sentAt: o.sentAt,
    agentVersion: '0.0.0-bench',
    firmware: { version: null, slot: null, trial: false },
    uptimeS: o.uptimeS,
    agentUptimeS: o.uptimeS,
    lastReboot: { reason: 'first_boot', detail: null },
    verdict: 'nominal',
    verdictReason: null,
    problems: [],
    escalation: [],
    cameras: [{ camera, name: camera, state: 'ok', lastCaptureAt: o.sentAt, capturesOk: o.capturesOk, failures: 0, lastError: null }],
    queue: VARIANTS.map((variant) => ({ camera, variant, depth: 0, oldestAgeMs: null })),
    deadLetters: 0,
    evictions: 0,
    disk: { totalBytes: 32 * 1024 ** 3, freeBytes: 24 * 1024 ** 3 },
    memory: { rssBytes: 90 * 1024 ** 2, heapUsedBytes: 40 * 1024 ** 2 },
    clock: 'synced',
    logs: [],
    update: null,
    local: null,
  };
}

/** POST /v1/heartbeat; returns when the cloud stored it. */
export async function sendBenchHeartbeat(cloudUrl: string, token: string, body: HeartbeatRequest): Promise<HeartbeatResponse> {
  return call<HeartbeatResponse>(`${cloudUrl}/v1/heartbeat`, { method: 'POST', token, json: body });
}
