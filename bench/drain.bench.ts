// Backlog drain: a queue of capture pairs (1920x1080 original, 1024x576 compressed — real
// JPEGs from ffmpeg's test source) uploaded by one camera's two uploaders to the real cloud
// on loopback (presign → PUT → complete, sha256 verified by the cloud).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../agent/dist/store/db.js';
import { UploadQueue } from '../agent/dist/store/upload-queue.js';
import { Counters } from '../agent/dist/store/counters.js';
import { Bus } from '../agent/dist/lib/bus.js';
import { systemClock } from '../agent/dist/lib/clock.js';
import { silentLogger } from '../agent/dist/lib/logger.js';
import { CloudClient } from '../agent/dist/cloud/cloud-client.js';
import { Uploader, DEFAULT_UPLOAD_POLICY } from '../agent/dist/upload/uploader.js';
import { report, startBenchCloud } from './lib.ts';

const PAIRS = 150;
const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-drain-'));
const cloud = await startBenchCloud(dir);
const { url, claimCode: code } = cloud;
const { token } = (await (await fetch(`${url}/v1/claim`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code, hardwareId: 'bench' }),
})).json()) as { token: string };

// Two real frames, reused with distinct timestamps.
const frames: Record<'original' | 'compressed', Buffer> = { original: Buffer.alloc(0), compressed: Buffer.alloc(0) };
execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=1',
  '-filter_complex', '[0:v]split=2[a][b];[b]scale=1024:1024:force_original_aspect_ratio=decrease[s]',
  '-map', '[a]', '-frames:v', '1', '-q:v', '2', join(dir, 'o.jpg'), '-map', '[s]', '-frames:v', '1', '-q:v', '18', join(dir, 'c.jpg')]);
frames.original = readFileSync(join(dir, 'o.jpg'));
frames.compressed = readFileSync(join(dir, 'c.jpg'));

const db = openDb(join(dir, 'agent.db'));
const queue = new UploadQueue(db);
mkdirSync(join(dir, 'spool', 'cam1'), { recursive: true });
for (let i = 0; i < PAIRS; i++) {
  const at = 1_700_000_000_000 + i * 30_000;
  queue.enqueue((['original', 'compressed'] as const).map((variant) => {
    const imagePath = join(dir, 'spool', 'cam1', `${at}-${variant}.jpg`);
    writeFileSync(imagePath, frames[variant]);
    return { camera: 'cam1', imagePath, capturedAt: at, variant, dhash: 'a'.repeat(1024), bytes: frames[variant].length, sha256: createHash('sha256').update(frames[variant]).digest('hex') };
  }), Date.now());
}

const bus = new Bus();
const counters = new Counters(db);
const client = new CloudClient({ baseUrl: url, token: () => token });
const stopper = new AbortController();
const uploaders = (['compressed', 'original'] as const).map((variant) => new Uploader({
  camera: 'cam1', variant, queue, counters, client, bus, clock: systemClock, log: silentLogger(), policy: { ...DEFAULT_UPLOAD_POLICY, activePollMs: 20, idlePollMs: 20 },
}));
const t0 = performance.now();
const running = Promise.all(uploaders.map((u) => u.start(stopper.signal)));
while (queue.depth().length > 0) await new Promise((r) => setTimeout(r, 10));
const secs = (performance.now() - t0) / 1000;
stopper.abort();
await running;
await client.close();
await cloud.close();
db.close();
rmSync(dir, { recursive: true, force: true });
report('backlog_drain_uploads', (PAIRS * 2) / secs, 'uploads/s');
report('backlog_drain_throughput', ((frames.original.length + frames.compressed.length) * PAIRS) / secs / 1e6, 'MB/s');
