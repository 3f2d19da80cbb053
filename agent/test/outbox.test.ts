import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDb } from '../src/store/db.js';
import { UploadQueue } from '../src/store/upload-queue.js';
import { Counters } from '../src/store/counters.js';
import { Outbox } from '../src/outbox/outbox.js';
import { Bus } from '../src/lib/bus.js';
import { FakeClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import type { Capture } from '../src/capture/types.js';
import { makeJpeg } from '../../test/helpers/jpeg.js';

const HASH = 'a'.repeat(1024);

async function setup(t: Test, budgetBytes = 10 * 1024 * 1024) {
  const dir = t.testdir({});
  const db = openDb(join(dir, 'agent.db'));
  t.teardown(() => db.close());
  const queue = new UploadQueue(db);
  const counters = new Counters(db);
  const bus = new Bus();
  const clock = new FakeClock();
  const spoolDir = join(dir, 'spool');
  const outbox = new Outbox({ spoolDir, budgetBytes, queue, counters, bus, clock, log: silentLogger() });
  await outbox.reconcile();
  let n = 0;
  const capture = async (camera = 'cam1', sizes: [number, number] = [640, 480]): Promise<Capture> => {
    const work = join(outbox.workDir, camera);
    mkdirSync(work, { recursive: true });
    const original = join(work, `o${n}.jpg`);
    const compressed = join(work, `c${n}.jpg`);
    writeFileSync(original, await makeJpeg(...sizes));
    writeFileSync(compressed, await makeJpeg(160, 120));
    n++;
    return { camera, capturedAt: clock.now() + n * 30_000, dhash: HASH, files: { original, compressed } };
  };
  return { dir, db, queue, counters, bus, clock, outbox, spoolDir, capture };
}

t.test('accept spools both variants durably, queues them in one go, then wakes uploaders', async (t) => {
  const s = await setup(t);
  const woke: string[] = [];
  s.bus.on('queue:enqueued', (c, v) => woke.push(`${c}/${v}`));
  const cap = await s.capture();
  await s.outbox.accept(cap);
  t.same(woke.sort(), ['cam1/compressed', 'cam1/original']);
  const depth = s.queue.depth();
  t.same(depth.map((d) => [d.variant, d.count]), [['compressed', 1], ['original', 1]]);
  t.notOk(existsSync(cap.files.original), 'work file moved away');
  const item = s.queue.nextReady('cam1', 'original', s.clock.now(), 0)!;
  t.ok(existsSync(item.imagePath));
  t.match(item.imagePath, /spool\/cam1\/\d+-original\.jpg$/);
  t.equal(item.dhash, HASH);
  t.match(item.sha256, /^[0-9a-f]{64}$/);
  t.equal(s.counters.get('captures_queued'), 1);
});

t.test('a corrupt capture is refused and leaves nothing in the spool', async (t) => {
  const s = await setup(t);
  const cap = await s.capture();
  writeFileSync(cap.files.original, Buffer.from('<html>401 Unauthorized</html>'));
  await t.rejects(s.outbox.accept(cap), { code: 'CAPTURE_CORRUPT' });
  t.same(s.queue.depth(), []);
  t.same(readdirSync(s.spoolDir).filter((f) => f !== '.work'), []);
});

t.test('over budget: dead letters first, then oldest originals, compressed last; every eviction counted', async (t) => {
  const pair = (await makeJpeg(800, 600)).length + (await makeJpeg(160, 120)).length;
  const budget = Math.floor(pair * 2.5);
  const s = await setup(t, budget);
  const caps: Capture[] = [];
  for (let i = 0; i < 6; i++) caps.push(await s.capture('cam1', [800, 600]));
  for (const c of caps) await s.outbox.accept(c);
  t.ok(s.queue.spoolBytes() <= budget, 'spool stays within its budget');
  const evicted = s.counters.get('evicted_original');
  t.ok(evicted > 0, `evicted ${evicted} originals`);
  t.equal(s.counters.get('evicted_compressed'), 0, 'no compressed frame evicted while originals remain');
  t.equal(s.queue.depth().find((d) => d.variant === 'compressed')!.count, 6, 'all compressed frames kept');
  const kept = s.queue.nextReady('cam1', 'original', s.clock.now() + 1e9, 0)!;
  t.ok(kept.capturedAt > caps[0]!.capturedAt, 'the oldest originals went first');
  const files = readdirSync(join(s.spoolDir, 'cam1'));
  t.equal(files.length, 6 + (6 - evicted), 'evicted files are gone from disk too');
});

t.test('a capture larger than the whole budget is dropped and counted', async (t) => {
  const s = await setup(t, 1000);
  await t.rejects(s.outbox.accept(await s.capture()), { code: 'SPOOL_BUDGET' });
  t.equal(s.counters.get('captures_dropped_budget'), 1);
  t.same(s.queue.depth(), []);
});

t.test('reconcile: the file of an uploaded frame (killed before its unlink) is removed, not enqueued again', async (t) => {
  const s = await setup(t);
  await s.outbox.accept(await s.capture());
  const before = s.counters.get('frames_enqueued');
  const item = s.queue.nextReady('cam1', 'original', s.clock.now(), 0)!;
  // The uploader's success: the row goes and the file is noted done; the kill comes before the unlink
  s.queue.complete(item.id, item.imagePath);
  t.ok(existsSync(item.imagePath), 'the file is still there');
  const r = await s.outbox.reconcile();
  t.same(r, { enqueued: 0, dropped: 0, removed: 1 });
  t.notOk(existsSync(item.imagePath), 'removed');
  t.equal(s.counters.get('reconcile_removed_uploaded'), 1);
  t.equal(s.counters.get('frames_enqueued'), before, 'the ledger counts the frame once');
  t.same(s.queue.donePaths(), new Set(), 'and the note is gone');
  t.same(s.queue.depth().map((d) => d.variant), ['compressed'], 'the other variant is still queued');
});

t.test('reconcile: file without row is enqueued, row without file dropped, work dir emptied', async (t) => {
  const s = await setup(t);
  const a = await s.capture();
  const b = await s.capture();
  await s.outbox.accept(a);
  await s.outbox.accept(b);
  // A crash between rename and commit leaves a spool file without a row.
  const orphan = s.outbox.pathFor('cam2', 1_700_000_000_000, 'compressed');
  mkdirSync(join(s.spoolDir, 'cam2'), { recursive: true });
  writeFileSync(orphan, await makeJpeg(200, 100));
  // A file lost from a row.
  const lost = s.queue.nextReady('cam1', 'original', s.clock.now(), 0)!;
  const { unlinkSync } = await import('node:fs');
  unlinkSync(lost.imagePath);
  // Junk: unfinished capture work and a stray file.
  writeFileSync(join(s.outbox.workDir, 'partial.jpg'), 'xx');
  writeFileSync(join(s.spoolDir, 'cam1', 'notes.txt'), 'x');
  const r = await s.outbox.reconcile();
  t.same(r, { enqueued: 1, dropped: 1, removed: 1 });
  t.same(readdirSync(s.outbox.workDir), []);
  const adopted = s.queue.nextReady('cam2', 'compressed', s.clock.now(), 0)!;
  t.equal(adopted.capturedAt, 1_700_000_000_000);
  t.match(adopted.dhash, /^[0-9a-f]{1024}$/);
  t.equal(s.counters.get('reconcile_dropped_rows'), 1);
  t.equal(s.counters.get('reconcile_enqueued'), 1);
  t.same(await s.outbox.reconcile(), { enqueued: 0, dropped: 0, removed: 0 }, 'a second pass finds nothing');
});
