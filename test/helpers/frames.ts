import type { FrameSummary } from '@vigil/protocol';
import { openDb } from '../../agent/src/store/db.js';
import { UploadQueue } from '../../agent/src/store/upload-queue.js';
import { Counters } from '../../agent/src/store/counters.js';
import { join } from 'node:path';

export const frameKey = (camera: string, capturedAt: number, variant: string): string => `${camera}/${capturedAt}/${variant}`;

/** Keys of the cloud's frames, with duplicates (there should be none) listed apart. */
export function cloudKeys(frames: FrameSummary[], cameraKeyById: Map<string, string>): { keys: Set<string>; duplicates: string[] } {
  const keys = new Set<string>();
  const duplicates: string[] = [];
  for (const f of frames) {
    const k = frameKey(cameraKeyById.get(f.cameraId) ?? f.cameraId, f.capturedAt, f.variant);
    if (keys.has(k)) duplicates.push(k);
    keys.add(k);
  }
  return { keys, duplicates };
}

/** What the (stopped or running) agent's database says: queued keys, counters, integrity. */
export function agentDbSnapshot(dataDir: string): { queued: Set<string>; counters: Record<string, number>; deadLetters: number; integrity: string } {
  const db = openDb(join(dataDir, 'agent.db'));
  try {
    const queue = new UploadQueue(db);
    const rows = db.prepare<[], { camera_mac: string; unix_timestamp: number; variant_type: string }>('SELECT camera_mac, unix_timestamp, variant_type FROM upload_queue').all();
    return {
      queued: new Set(rows.map((r) => frameKey(r.camera_mac, r.unix_timestamp, r.variant_type))),
      counters: new Counters(db).all(),
      deadLetters: queue.deadLetterCount(),
      integrity: String(db.pragma('integrity_check', { simple: true })),
    };
  } finally {
    db.close();
  }
}
