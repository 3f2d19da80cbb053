// Outbox queue throughput: enqueue a capture pair (one transaction) + dequeue and delete each
// row, on a real file-backed SQLite database, with the agent's chosen synchronous=FULL and,
// for comparison, NORMAL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../agent/dist/store/db.js';
import { UploadQueue } from '../agent/dist/store/upload-queue.js';
import { report } from './lib.ts';

const PAIRS = 2000;
const HASH = 'a'.repeat(1024);

function run(sync: 'FULL' | 'NORMAL'): number {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-'));
  const db = openDb(join(dir, 'agent.db'));
  db.pragma(`synchronous = ${sync}`);
  const q = new UploadQueue(db);
  const t0 = performance.now();
  for (let i = 0; i < PAIRS; i++) {
    const at = 1_700_000_000_000 + i * 30_000;
    q.enqueue(
      (['original', 'compressed'] as const).map((variant) => ({
        camera: 'cam1', imagePath: join(dir, `${at}-${variant}.jpg`), capturedAt: at, variant, dhash: HASH, sha256: 'f'.repeat(64), bytes: 1000,
      })),
      at,
    );
    for (const v of ['compressed', 'original'] as const) {
      const item = q.nextReady('cam1', v, at, 1_800_000)!;
      q.remove(item.id);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  db.close();
  rmSync(dir, { recursive: true, force: true });
  // One op = one frame enqueued and dequeued.
  return (PAIRS * 2) / secs;
}

report('queue_enqueue_dequeue_sync_full', Math.round(run('FULL')), 'ops/s');
report('queue_enqueue_dequeue_sync_normal', Math.round(run('NORMAL')), 'ops/s');
