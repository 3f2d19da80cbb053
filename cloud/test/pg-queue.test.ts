import pg from 'pg';
import t from 'tap';
import type { IntakeInput } from '../src/store/analysis-types.js';
import type { NotificationDraft } from '../src/store/alert-types.js';
import { PgStore } from '../src/store/pg-store.js';
import { startPostgres } from '../../test/helpers/postgres.js';

// The PostgreSQL store's queues and races, with two PgStore instances on one database standing
// for two cloud replicas: claims of jobs and notifications are disjoint and lose nothing,
// an alert opened by both at once is opened once, a stale intake writes nothing, a batch is
// closed once, and the live stream's seq order is its commit order.

interface Tap {
  teardown(fn: () => unknown): void;
}
const T0 = Date.UTC(2025, 0, 1);

interface Replicas {
  a: PgStore;
  b: PgStore;
  /** Plain SQL, to look at what the stores wrote. */
  sql: pg.Pool;
  deviceId: string;
  cameraIds: string[];
}

async function replicas(t: Tap, cameras = 1): Promise<Replicas> {
  const server = await startPostgres(t);
  const a = await PgStore.open({ url: server.url, poolSize: 8 });
  const b = await PgStore.open({ url: server.url, poolSize: 8 });
  const sql = new pg.Pool({ connectionString: server.url, max: 2 });
  t.teardown(async () => {
    await a.close();
    await b.close();
    await sql.end();
  });
  await a.createClaimCode({ siteName: 'Cafe Lune', newSiteId: 'site-1', codeHash: 'code-1', expiresAt: T0 + 60_000, now: T0 });
  const claimed = await a.claim({ codeHash: 'code-1', hardwareId: 'hw-1', name: 'till', tokenHash: 'token-1', newDeviceId: 'dev-1', now: T0 });
  if (!claimed.ok) throw new Error(`claim failed: ${claimed.reason}`);
  const cameraIds: string[] = [];
  for (let i = 0; i < cameras; i++) cameraIds.push((await a.ensureCamera('dev-1', `cam${i}`, `cam-${i}`, T0)).id);
  return { a, b, sql, deviceId: 'dev-1', cameraIds };
}

/** A compressed frame, stored as an upload completes (which queues its frame job). */
async function addFrame(s: PgStore, cameraId: string, n: number): Promise<string> {
  const id = `up-${cameraId}-${n}`;
  await s.createUpload({
    id,
    deviceId: 'dev-1',
    cameraId,
    capturedAt: T0 + n * 1000,
    variant: 'compressed',
    bytes: 100,
    sha256: `sha-${n}`,
    dhash: '0'.repeat(16),
    objectKey: `obj/${cameraId}/${n}`,
    createdAt: T0,
  });
  return (await s.completeUpload(id, `frm-${cameraId}-${n}`, T0)).frame.id;
}

async function count(sql: pg.Pool, query: string, params: unknown[] = []): Promise<number> {
  return Number((await sql.query<{ n: string }>(query, params)).rows[0]!.n);
}

let drafted = 0;
const drafts =
  (targets: number, event: NotificationDraft['event']) =>
  (alert: { id: string }): NotificationDraft[] =>
    Array.from({ length: targets }, (_, i) => ({ id: `ntf-${alert.id}-${++drafted}`, event, target: `hook-${i}`, payload: '{}' }));

t.test('two replicas claiming jobs at once get disjoint jobs, and together all of them', async (t) => {
  const r = await replicas(t);
  const frames: string[] = [];
  for (let n = 0; n < 60; n++) frames.push(await addFrame(r.a, r.cameraIds[0]!, n));
  const now = T0 + 10_000;
  const takenBy = { a: [] as number[], b: [] as number[] };
  const drain = async (name: 'a' | 'b') => {
    for (;;) {
      const jobs = await r[name].analysis.claimJobs('frame', now, 4, now + 60_000);
      if (jobs.length === 0) return;
      takenBy[name].push(...jobs.map((j) => j.id));
    }
  };
  await Promise.all([drain('a'), drain('b'), drain('a'), drain('b')]);
  const all = [...takenBy.a, ...takenBy.b];
  t.equal(new Set(all).size, all.length, 'no job taken twice');
  t.equal(all.length, frames.length, 'every job taken');
  t.ok(takenBy.a.length > 0 && takenBy.b.length > 0, `both replicas took some (${takenBy.a.length} + ${takenBy.b.length})`);
  t.equal(await count(r.sql, `SELECT count(*) AS n FROM jobs WHERE state = 'running' AND attempts = 1`), frames.length, 'each claimed once, leased');
});

t.test('a job whose lease ran out is taken again, its attempt counted; a leased one is not', async (t) => {
  const r = await replicas(t);
  await addFrame(r.a, r.cameraIds[0]!, 1);
  await addFrame(r.a, r.cameraIds[0]!, 2);
  const first = await r.a.analysis.claimJobs('frame', T0 + 1_000, 1, T0 + 5_000);
  t.equal(first.length, 1);
  t.equal(first[0]!.attempts, 1);
  const second = await r.a.analysis.claimJobs('frame', T0 + 2_000, 10, T0 + 60_000);
  t.same(second.map((j) => j.ref), ['frm-cam-0-2'], 'only the other job while the lease runs');
  const again = await r.b.analysis.claimJobs('frame', T0 + 5_000, 10, T0 + 60_000);
  t.same(
    again.map((j) => ({ id: j.id, attempts: j.attempts })),
    [{ id: first[0]!.id, attempts: 2 }],
    'the expired one, by the other replica, on its second attempt',
  );
  t.equal(await r.a.analysis.nextJobAt('frame'), T0 + 60_000, 'next due when a lease ends');
});

t.test('two replicas claiming notifications at once get disjoint rows, and together all of them', async (t) => {
  const r = await replicas(t);
  for (let i = 0; i < 10; i++) {
    await r.a.alerts.openAlert({ id: `alr-${i}`, kind: `k${i}`, deviceId: r.deviceId, cameraId: null, openedAt: T0, title: 'x', detail: {} }, drafts(5, 'alert.opened'), T0);
  }
  const now = T0 + 1_000;
  const ids = { a: [] as string[], b: [] as string[] };
  const drain = async (name: 'a' | 'b') => {
    for (;;) {
      const rows = await r[name].alerts.claimDueNotifications(now, 3, now + 30_000);
      if (rows.length === 0) return;
      ids[name].push(...rows.map((n) => n.id));
    }
  };
  await Promise.all([drain('a'), drain('b'), drain('a'), drain('b')]);
  const all = [...ids.a, ...ids.b];
  t.equal(new Set(all).size, all.length, 'no notification claimed twice');
  t.equal(all.length, 50, 'every notification claimed');
  t.equal(await r.b.alerts.nextNotificationAt(), now + 30_000, 'all leased until the lease ends');
});

t.test('replicas opening one alert at once: one creates it, the others get it; one re-notification, one close', async (t) => {
  const r = await replicas(t);
  const key = { kind: 'device_silent', deviceId: r.deviceId, cameraId: r.cameraIds[0]! };
  const results = await Promise.all(
    Array.from({ length: 16 }, (_, i) =>
      (i % 2 ? r.a : r.b).alerts.openAlert({ ...key, id: `alr-${i}`, openedAt: T0, title: 'silent', detail: {} }, drafts(1, 'alert.opened'), T0),
    ),
  );
  const created = results.filter((x) => x.created);
  t.equal(created.length, 1, 'one created');
  t.same(new Set(results.map((x) => x.alert.id)), new Set([created[0]!.alert.id]), 'all have the same alert');
  t.equal(await count(r.sql, `SELECT count(*) AS n FROM alerts`), 1, 'one row');
  t.equal(await count(r.sql, `SELECT count(*) AS n FROM notifications`), 1, 'one notification');
  const id = created[0]!.alert.id;

  const later = T0 + 10 * 60_000;
  const seen = created[0]!.alert.lastNotifiedAt;
  const renotified = await Promise.all([0, 1, 2, 3].map((i) => (i % 2 ? r.a : r.b).alerts.renotify(id, seen, later + i, drafts(1, 'alert.renotified'))));
  t.equal(renotified.filter((x) => x !== null).length, 1, 'one replica re-notifies, the others get null');
  t.equal(await count(r.sql, `SELECT count(*) AS n FROM notifications WHERE event = 'alert.renotified'`), 1, 'sent once');
  const sent = renotified.find((x) => x !== null)!;
  t.equal(await r.a.alerts.renotify(id, seen, later + 60_000, drafts(1, 'alert.renotified')), null, 'a sweep that read the alert before then does not send it again');
  t.ok(await r.a.alerts.renotify(id, sent.lastNotifiedAt, later + 60_000, drafts(1, 'alert.renotified')), 'one that read it since does');

  const closed = await Promise.all([0, 1, 2, 3].map((i) => (i % 2 ? r.a : r.b).alerts.closeAlert(id, later, 'heartbeat received', drafts(1, 'alert.closed'))));
  t.equal(closed.filter((x) => x !== null).length, 1, 'one close');
  t.equal(await count(r.sql, `SELECT count(*) AS n FROM notifications WHERE event = 'alert.closed'`), 1, 'one close notification');
  const again = await r.b.alerts.openAlert({ ...key, id: 'alr-next', openedAt: later, title: 'silent', detail: {} }, drafts(1, 'alert.opened'), later);
  t.ok(again.created, 'once closed, the next one opens');
});

function intake(frameId: string, cameraId: string, n: number, refFrameId: string | null, jobId: number, o: Partial<IntakeInput> = {}): IntakeInput {
  return {
    jobId,
    frame: { id: frameId, cameraId, deviceId: 'dev-1', capturedAt: T0 + n * 1000 },
    decision: { kind: 'batched', distance: null, reason: 'first', dhash: 'ffff' },
    refFrameId,
    policy: { windowMs: 60_000, idleMs: 10_000, maxFrames: 10 },
    newBatchId: `bat-${frameId}`,
    now: T0 + n * 1000,
    ...o,
  };
}

t.test('an intake decided against a reference that moved writes nothing and says so', async (t) => {
  const r = await replicas(t);
  const cam = r.cameraIds[0]!;
  const f1 = await addFrame(r.a, cam, 1);
  const f2 = await addFrame(r.a, cam, 2);
  const jobs = await r.a.analysis.claimJobs('frame', T0 + 10_000, 10, T0 + 60_000);
  const jobOf = (ref: string) => jobs.find((j) => j.ref === ref)!.id;
  t.equal(await r.a.analysis.recordIntake(intake(f1, cam, 1, null, jobOf(f1))), true, 'the first frame becomes the reference');
  const before = await r.b.analysis.cameraState(cam);
  t.equal(before?.refFrameId, f1);
  const stale = await r.b.analysis.recordIntake(intake(f2, cam, 2, null, jobOf(f2)));
  t.equal(stale, false, 'decided against no reference, but there is one now');
  t.same(await r.b.analysis.cameraState(cam), before, 'the camera is as it was');
  t.equal(await count(r.sql, 'SELECT count(*) AS n FROM analysis_frames WHERE frame_id = $1', [f2]), 0, 'the frame is not recorded');
  t.equal((await r.sql.query('SELECT state FROM jobs WHERE id = $1', [jobOf(f2)])).rows[0].state, 'running', 'its job is not ended');
  t.equal(await r.b.analysis.recordIntake(intake(f2, cam, 2, f1, jobOf(f2))), true, 'decided again against the new reference, it is recorded');
  t.equal((await r.b.analysis.cameraState(cam))?.framesBatched, 2);
});

t.test('two replicas closing due batches at once close and enqueue each batch once', async (t) => {
  const r = await replicas(t, 12);
  for (const cam of r.cameraIds) {
    const f = await addFrame(r.a, cam, 1);
    const [job] = await r.a.analysis.claimJobs('frame', T0 + 10_000, 1, T0 + 60_000);
    t.equal(await r.a.analysis.recordIntake(intake(f, cam, 1, null, job!.id)), true);
  }
  t.equal((await r.a.analysis.counters()).batches.open, 12, 'a batch open on each camera');
  const later = T0 + 120_000;
  const closed = await Promise.all([r.a, r.b, r.a, r.b].map((s) => s.analysis.closeDueBatches(later)));
  t.equal(closed.reduce((x, y) => x + y, 0), 12, `each batch closed by one pass (${closed.join(' + ')})`);
  t.equal(await count(r.sql, `SELECT count(*) AS n FROM jobs WHERE kind = 'batch'`), 12, 'one job per batch');
  t.equal(await count(r.sql, `SELECT count(*) AS n FROM analysis_batches WHERE state = 'ready'`), 12);
  t.equal(await count(r.sql, 'SELECT count(*) AS n FROM analysis_cameras WHERE open_batch_id IS NOT NULL'), 0, 'no camera has an open batch');
  t.equal(await r.a.analysis.nextBatchCloseAt(), null);
});

t.test('an event does not join a scene alert that a replica closed while the event was being recorded', async (t) => {
  const r = await replicas(t);
  const cam = r.cameraIds[0]!;
  const f = await addFrame(r.a, cam, 1);
  const [frameJob] = await r.a.analysis.claimJobs('frame', T0 + 2_000, 1, T0 + 60_000);
  // A zero window closes the batch at once and queues its job.
  t.equal(await r.a.analysis.recordIntake(intake(f, cam, 1, null, frameJob!.id, { policy: { windowMs: 0, idleMs: 0, maxFrames: 10 } })), true);
  const [batchJob] = await r.b.analysis.claimJobs('batch', T0 + 2_000, 1, T0 + 60_000);
  t.equal(batchJob?.ref, `bat-${f}`);
  await r.a.alerts.openAlert({ id: 'alr-old', kind: 'scene', deviceId: r.deviceId, cameraId: cam, openedAt: T0, title: 'old', detail: {} }, () => [], T0);

  // Another replica's sweep is closing the alert: its transaction holds the row.
  const closer = await r.sql.connect();
  t.teardown(() => closer.release());
  await closer.query('BEGIN');
  await closer.query(`UPDATE alerts SET state = 'closed', closed_at = $1, resolution = 'quiet' WHERE id = 'alr-old'`, [T0 + 3_000]);
  const planned: (string | null)[] = [];
  const recording = r.b.analysis.recordBatch({
    jobId: batchJob!.id,
    batchId: batchJob!.ref,
    detections: {},
    outcome: { ok: true },
    event: {
      id: 'evt-1',
      startedAt: T0 + 1_000,
      endedAt: T0 + 1_000,
      riskScore: 60,
      level: 'high',
      summary: 'a person',
      reasoning: '',
      observations: [],
      detections: [],
      source: 'detector',
      model: null,
      offSpec: null,
      analysisError: null,
    },
    planAlert: (open) => {
      planned.push(open?.id ?? null);
      return open
        ? { action: 'attach', alertId: open.id, escalateTo: null, notify: false }
        : { action: 'open', alertId: 'alr-new', title: 'new', level: 'high', detail: {}, notify: false };
    },
    notify: () => [],
    now: T0 + 3_000,
  });
  const waiting = async () => (await count(r.sql, 'SELECT count(*) AS n FROM pg_locks WHERE NOT granted')) > 0;
  for (let i = 0; i < 200 && !(await waiting()); i++) await new Promise((res) => setTimeout(res, 25));
  t.ok(await waiting(), 'the recording waits for the closing transaction');
  await closer.query('COMMIT');
  const saved = await recording;
  t.same(planned, [null], 'the plan saw no open alert (the close committed first)');
  t.equal(saved.alert?.id, 'alr-new', 'the event opened a new alert');
  t.equal((await r.a.events.getEvent('evt-1'))?.alertId, 'alr-new');
  t.equal((await r.a.alerts.getAlert('alr-old'))?.eventCount, 0, 'the closed alert got no event');
});

t.test('the stream is read in commit order: a reader never sees a gap that a later commit fills', async (t) => {
  const r = await replicas(t);
  const writers = 24;
  const perWriter = 6;
  let writing = true;
  const seen: number[] = [];
  const reader = (async () => {
    let last = 0;
    for (;;) {
      const done = !writing;
      const page = await r.b.events.streamAfter(last, 1000);
      for (const m of page) {
        seen.push(m.seq);
        last = m.seq;
      }
      if (done && page.length === 0) return;
    }
  })();
  // Each write is a transaction that changes an alert and appends to the stream; many run at
  // once over both replicas' connections.
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const s = w % 2 ? r.a : r.b;
      for (let i = 0; i < perWriter; i++) {
        const id = `alr-${w}-${i}`;
        await s.alerts.openAlert({ id, kind: `burst-${w}-${i}`, deviceId: r.deviceId, cameraId: null, openedAt: T0, title: 'x', detail: {} }, () => [], T0);
      }
    }),
  );
  writing = false;
  await reader;
  const all = (await r.a.events.streamAfter(0, 10_000)).map((m) => m.seq);
  t.equal(all.length, writers * perWriter, 'every append is in the log');
  t.same(seen, all, 'the reader saw every message, in order, none skipped');
  t.same((await r.a.events.streamBounds()).last, all.at(-1), 'bounds end at the newest');
  t.equal(await r.a.events.pruneStream(T0 + 1), all.length, 'pruned');
  t.same(await r.b.events.streamBounds(), { first: null, last: all.at(-1) }, 'the last seq is kept when the log is empty');
});

t.test("a replica hears of another's stream appends, and again after its listening connection was cut", async (t) => {
  const r = await replicas(t);
  let heard = 0;
  const unsubscribe = r.a.watchStream(() => heard++);
  t.teardown(unsubscribe);
  const listening = async () =>
    Number((await r.sql.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'vigil-cloud-listen' AND query ILIKE 'LISTEN%'")).rows[0].n);
  await until(async () => (await listening()) === 1, 'replica a to listen');

  const open = (i: number) => r.b.alerts.openAlert({ kind: 'device_silent', deviceId: r.deviceId, cameraId: r.cameraIds[0]!, id: `alr-w${i}`, openedAt: T0, title: 'silent', detail: {} }, () => [], T0);
  await open(1);
  await until(() => heard >= 1, 'the append by replica b to be heard');

  // The server drops the listening connection (a restart, a failover): a new one is opened,
  // and the listener is called once for what may have been missed meanwhile.
  const before = heard;
  await r.sql.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'vigil-cloud-listen'");
  await until(() => heard > before, 'the catch-up call after reconnecting', 10_000);
  await until(async () => (await listening()) === 1, 'replica a to listen again', 10_000);
  const after = heard;
  await r.b.alerts.closeAlert('alr-w1', T0 + 1, 'back', () => []);
  await until(() => heard > after, 'a later append to be heard on the new connection');
});

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}
