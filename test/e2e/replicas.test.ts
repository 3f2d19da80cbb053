// Several cloud replicas behind one address, as a larger fleet runs them: two `vigil-cloud serve`
// processes on one PostgreSQL database and one S3-compatible bucket (@20minutes/s3rver, which
// checks signatures), behind HAProxy. Real servers all of them; the vision model is the
// OpenAI-compatible test double (no model runs here), the webhook receiver a plain HTTP server.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { OpenAiTestDouble } from '../../cloud/test/doubles/openai-double.js';
import { WebhookReceiver } from '../../cloud/test/doubles/webhook-receiver.js';
import { heartbeatBody, makeJpeg, type Jpeg } from '../../cloud/test/helpers.js';
import { startCloudProcess, type CloudProcess } from '../helpers/cloud-process.js';
import { startHaproxy } from '../helpers/haproxy.js';
import { freePort } from '../helpers/ports.js';
import { startPostgres } from '../helpers/postgres.js';
import { startS3 } from '../helpers/s3.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const ADMIN = `admin-${randomBytes(12).toString('hex')}`;
const WEBHOOK_SECRET = 'replica-webhook-secret-0123456789';

const ANSWER = {
  content: JSON.stringify({
    riskScore: 70,
    level: 'high',
    summary: 'Someone is at the back door.',
    reasoning: 'A person stands by the door after hours.',
    observations: ['one person'],
  }),
};

interface Cluster {
  url: string;
  replicas: CloudProcess[];
  db: pg.Pool;
  model: OpenAiTestDouble;
  hook: WebhookReceiver;
}

/** PostgreSQL, S3, the model double, a webhook receiver, two replicas and HAProxy. */
async function cluster(t: Test, env: NodeJS.ProcessEnv = {}): Promise<Cluster> {
  const [pgServer, s3, model, hook] = await Promise.all([startPostgres(t), startS3(t), OpenAiTestDouble.start(t), WebhookReceiver.start(t)]);
  model.fallback = ANSWER;
  const shared: NodeJS.ProcessEnv = {
    VIGIL_DATABASE_URL: pgServer.url,
    VIGIL_S3_BUCKET: s3.bucket,
    VIGIL_S3_ENDPOINT: s3.endpoint,
    VIGIL_S3_REGION: s3.region,
    VIGIL_S3_ACCESS_KEY_ID: s3.accessKeyId,
    VIGIL_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    VIGIL_ADMIN_TOKEN: ADMIN,
    VIGIL_URL_SIGNING_KEY: randomBytes(32).toString('hex'),
    VIGIL_DETECTOR: 'off',
    VIGIL_VISION_BASE_URL: model.baseUrl,
    VIGIL_VISION_MODEL: 'vision-double',
    VIGIL_BATCH_WINDOW_S: '0',
    VIGIL_JOB_LEASE_S: '3',
    VIGIL_DEVICE_RATE_LIMIT: '100000',
    VIGIL_WEBHOOK_URLS: hook.url,
    VIGIL_WEBHOOK_SECRET: WEBHOOK_SECRET,
    VIGIL_WEBHOOK_TIMEOUT_S: '2',
    VIGIL_LOG_LEVEL: 'warn',
    ...env,
  };
  const ports = [await freePort(), await freePort()];
  // One after the other: the first migrates the schema (the second would wait on its lock).
  const replicas: CloudProcess[] = [];
  for (const port of ports) replicas.push(await startCloudProcess(t, port, { ...shared, VIGIL_CLOUD_DATA_DIR: await tmpDir(t, 'vigil-replica-') }));
  const lb = await startHaproxy(
    t,
    ports.map((p) => `127.0.0.1:${p}`),
  );
  const db = new pg.Pool({ connectionString: pgServer.url, max: 2 });
  t.teardown(() => db.end());
  return { url: lb.url, replicas, db, model, hook };
}

async function call<T>(url: string, method: string, path: string, o: { token?: string; json?: unknown } = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(url + path, {
    method,
    headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(o.json === undefined ? {} : { 'content-type': 'application/json' }) },
    body: o.json === undefined ? undefined : JSON.stringify(o.json),
  });
  const text = await res.text();
  return { status: res.status, body: (text && res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text) as T };
}

async function claim(url: string, hardwareId: string): Promise<string> {
  const code = await call<{ code: string }>(url, 'POST', '/admin/v1/claim-codes', { token: ADMIN, json: { site: 'Depot' } });
  const res = await call<{ token: string }>(url, 'POST', '/v1/claim', { json: { code: code.body.code, hardwareId } });
  if (res.status !== 200) throw new Error(`claim ${hardwareId}: ${res.status}`);
  return res.body.token;
}

/**
 * One frame as the agent sends it: presign → PUT to the bucket → complete, the whole exchange
 * again after any failure (a replica gone mid-request, a 5xx), as the agent's uploader keeps a
 * frame until the cloud has accepted it. Resolves with the frame id the cloud accepted.
 */
async function sendFrame(url: string, token: string, camera: string, capturedAt: number, variant: string, f: Jpeg, retries: { n: number }): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const p = await call<{ status: string; frameId?: string; uploadId: string; url: string; method: string; headers: Record<string, string> }>(url, 'POST', '/v1/uploads/presign', {
        token,
        json: { camera, capturedAt, variant, bytes: f.bytes.length, sha256: f.sha256, dhash: f.dhash },
      });
      if (p.status !== 200) throw new Error(`presign ${p.status}`);
      if (p.body.status === 'exists') return p.body.frameId!;
      // undici's request, as the agent sends it: the signed content-length is sent as given.
      const put = await request(new URL(p.body.url, url), { method: 'PUT', headers: p.body.headers, body: f.bytes });
      await put.body.dump();
      if (put.statusCode !== 200) throw new Error(`PUT ${put.statusCode}`);
      const c = await call<{ frameId: string }>(url, 'POST', '/v1/uploads/complete', { token, json: { uploadId: p.body.uploadId } });
      if (c.status !== 200) throw new Error(`complete ${c.status}`);
      return c.body.frameId;
    } catch (err) {
      retries.n++;
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Reads SSE messages' ids from `url` until `enough` says stop (or the time is up). */
async function sseIds(url: string, lastEventId: number | null, enough: (ids: number[]) => boolean, timeoutMs = 15_000): Promise<number[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const ids: number[] = [];
  try {
    const res = await fetch(`${url}/v1/events/stream`, {
      headers: { authorization: `Bearer ${ADMIN}`, ...(lastEventId === null ? {} : { 'last-event-id': String(lastEventId) }) },
      signal: ac.signal,
    });
    let buf = '';
    for await (const chunk of res.body!) {
      buf += Buffer.from(chunk).toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('id: ')) ids.push(Number(line.slice(4)));
      }
      if (enough(ids)) break;
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return ids;
}

const count = async (db: pg.Pool, sql: string, params: unknown[] = []): Promise<number> => Number((await db.query(sql, params)).rows[0].n);

t.test('a replica killed mid-load: every accepted frame is kept, analysed once, no event twice', async (t) => {
  const c = await cluster(t);
  // A slow model: each replica always has analyses in flight, so the kill interrupts some.
  c.model.fallback = { ...ANSWER, delayMs: 1_500 };
  const DEVICES = 8;
  const PAIRS = 10;
  const base = Date.UTC(2026, 11, 6, 2, 0, 0);
  const tokens = await Promise.all(Array.from({ length: DEVICES }, (_, i) => claim(c.url, `hw-replica-${i}`)));
  // Distinct pictures, so intake admits most of them and analysis has real work.
  const pictures = await Promise.all(Array.from({ length: PAIRS * 2 }, (_, i) => makeJpeg(i + 3, 160, 120)));
  const accepted = new Map<string, { frameId: string; jpeg: Jpeg }>();
  const retries = { n: 0 };
  let killed = false;
  await Promise.all(
    tokens.map(async (token, d) => {
      for (let i = 0; i < PAIRS; i++) {
        const capturedAt = base + i * 30_000;
        for (const [variant, jpeg] of [['original', pictures[2 * i]!], ['compressed', pictures[2 * i + 1]!]] as const) {
          const frameId = await sendFrame(c.url, token, 'back-door', capturedAt, variant, jpeg, retries);
          accepted.set(`${d}/${capturedAt}/${variant}`, { frameId, jpeg });
        }
        // A third of the way in, the first replica dies without a word (SIGKILL).
        if (!killed && accepted.size >= (DEVICES * PAIRS * 2) / 3) {
          killed = true;
          await c.replicas[0]!.kill();
        }
      }
    }),
  );
  t.ok(killed, 'a replica was killed mid-load');
  t.equal(accepted.size, DEVICES * PAIRS * 2, 'every frame was accepted in the end');
  t.comment(`devices repeated ${retries.n} exchanges after failures`);

  // Kept: each accepted frame once in the database, its bytes in the bucket (read back through
  // the surviving replica, which streams them from S3).
  t.equal(await count(c.db, 'SELECT count(*) AS n FROM frames'), accepted.size, 'one frame record per accepted frame, no more');
  const ids = new Set([...accepted.values()].map((a) => a.frameId));
  t.equal(ids.size, accepted.size, 'no two captures share a frame id');
  let sameBytes = 0;
  for (const { frameId, jpeg } of accepted.values()) {
    const res = await fetch(`${c.url}/admin/v1/frames/${frameId}/image`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (res.status === 200 && bytes.equals(jpeg.bytes)) sameBytes++;
  }
  t.equal(sameBytes, accepted.size, 'every accepted frame reads back byte for byte');

  // Analysed once: the dead replica's jobs were taken over when their leases ran out.
  await waitFor(async () => (await count(c.db, "SELECT count(*) AS n FROM jobs WHERE state IN ('pending', 'running')")) === 0, 60_000, 'the analysis queue to drain');
  const compressed = DEVICES * PAIRS;
  t.equal(await count(c.db, "SELECT count(*) AS n FROM jobs WHERE kind = 'frame' AND state = 'done'"), compressed, 'one intake job per compressed frame, all done');
  t.equal(await count(c.db, 'SELECT count(*) AS n FROM analysis_frames'), compressed, 'every compressed frame decided once');
  t.equal(await count(c.db, "SELECT count(*) AS n FROM jobs WHERE state = 'failed'"), 0, 'no job failed');
  const batches = await count(c.db, "SELECT count(*) AS n FROM analysis_batches WHERE state = 'done'");
  const events = await count(c.db, 'SELECT count(*) AS n FROM events');
  t.ok(batches >= DEVICES, `${batches} batches analysed`);
  t.equal(events, batches, 'one event per analysed batch: none lost, none twice');
  t.equal(await count(c.db, 'SELECT count(*) AS n FROM (SELECT frame_id FROM analysis_frames WHERE batch_id IS NOT NULL GROUP BY frame_id HAVING count(*) > 1) x'), 0, 'no frame in two batches');
  const retaken = await count(c.db, "SELECT count(*) AS n FROM jobs WHERE kind = 'batch' AND attempts > 1");
  t.ok(retaken > 0, `${retaken} analyses the dead replica had in flight were taken over`);
  // A batch taken over may have been claimed by the dead replica before it asked the model.
  const asked = c.model.requests.length;
  t.ok(asked >= events && asked <= events + retaken, `the model was asked ${asked} times: once per batch, and again at most for each taken over`);

  // The survivor carries on alone.
  t.equal((await call(c.url, 'GET', '/healthz')).status, 200, 'the one address still answers');
});

t.test('background work runs once across replicas; the live stream replays on either', async (t) => {
  const c = await cluster(t, { VIGIL_DEVICE_SILENT_S: '2', VIGIL_FLEET_SWEEP_INTERVAL_S: '1' });
  const DEVICES = 3;
  const tokens = await Promise.all(Array.from({ length: DEVICES }, (_, i) => claim(c.url, `hw-silent-${i}`)));
  for (const token of tokens) {
    const hb = await call(c.url, 'POST', '/v1/heartbeat', { token, json: heartbeatBody({ sentAt: Date.now(), cameras: [] }) });
    t.equal(hb.status, 200, 'heartbeat accepted');
  }

  // The devices fall silent: each gets one device_silent alert, and its webhook is sent once.
  await waitFor(async () => (await count(c.db, "SELECT count(*) AS n FROM alerts WHERE kind = 'device_silent'")) === DEVICES, 30_000, 'a device_silent alert per device');
  await waitFor(async () => (await count(c.db, "SELECT count(*) AS n FROM notifications WHERE state = 'delivered'")) === DEVICES, 30_000, 'the notifications to be delivered');
  await new Promise((r) => setTimeout(r, 3_000)); // time for a second sweep or delivery, were there one
  t.equal(await count(c.db, "SELECT count(*) AS n FROM alerts WHERE kind = 'device_silent'"), DEVICES, 'one alert per silent device, not one per replica');
  const keys = c.hook.received.map((w) => String(w.headers['idempotency-key']));
  t.equal(keys.length, DEVICES, 'each notification was sent once');
  t.equal(new Set(keys).size, DEVICES, 'one per alert');
  const lease = await c.db.query("SELECT holder FROM leases WHERE name = 'fleet-sweep'");
  t.equal(lease.rowCount, 1, 'one replica holds the fleet sweep');

  // The stream through replica 1, then a reconnect to replica 2 with Last-Event-ID: it replays
  // exactly what came after, from the shared log.
  const [r1, r2] = c.replicas as [CloudProcess, CloudProcess];
  const all = (await c.db.query<{ seq: number }>('SELECT seq FROM stream ORDER BY seq')).rows.map((r) => Number(r.seq));
  t.ok(all.length >= DEVICES, `${all.length} stream messages so far`);
  const first = await sseIds(r1.url, 0, (ids) => ids.length >= 1);
  t.same(first.slice(0, 1), all.slice(0, 1), 'replica 1 replays from the start');
  const replayed = await sseIds(r2.url, first[0]!, (ids) => ids.length >= all.length - 1);
  t.same(replayed.slice(0, all.length - 1), all.slice(1), 'replica 2 replays the rest after Last-Event-ID');

  // A change committed through replica 1 reaches a reader on replica 2 live (NOTIFY).
  const last = all[all.length - 1]!;
  const live = sseIds(r2.url, last, (ids) => ids.length >= 1);
  await new Promise((r) => setTimeout(r, 500)); // the reader is connected and waiting
  const open = (await c.db.query<{ id: string }>("SELECT id FROM alerts WHERE state = 'open' LIMIT 1")).rows[0]!;
  const ack = await call(r1.url, 'POST', `/admin/v1/alerts/${open.id}/ack`, { token: ADMIN });
  t.equal(ack.status, 200, 'acknowledged through replica 1');
  const got = await live;
  t.ok(got.length >= 1 && got[0]! > last, 'the reader on replica 2 got the acknowledgement at once');
});
