import { once } from 'node:events';
import t, { type Test } from 'tap';
import { request, type Dispatcher } from 'undici';
import { FixedAnalyser } from './doubles/fixed-analyser.js';
import { claimDevice, describeJpeg, eventually, http, loginDashboard, startTestCloud, uploadFrame, type TestCloud } from './helpers.js';
import { encode, paste, patternScene, person } from './scenes.js';

// GET /v1/events/stream, read the way a browser's EventSource reads it: a client that drops
// and reconnects with Last-Event-ID gets each message it missed once, in order, then the live
// ones. Events come from the real pipeline (an in-process analyser test double answers).

interface Message {
  id: string;
  event: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read payloads loosely
  data: any;
}

/** An SSE connection: messages as they are parsed, and a way to hang up. */
class StreamClient {
  readonly messages: Message[] = [];
  status = 0;
  #body: Dispatcher.ResponseData['body'] | undefined;
  #closed = false;

  static async open(cloud: TestCloud, headers: Record<string, string>, query = ''): Promise<StreamClient> {
    const c = new StreamClient();
    const res = await request(`${cloud.url}/v1/events/stream${query}`, { headers });
    c.status = res.statusCode;
    c.#body = res.body;
    if (c.status === 200) void c.#read();
    return c;
  }

  async #read(): Promise<void> {
    let buf = '';
    try {
      for await (const chunk of this.#body!) {
        buf += (chunk as Buffer).toString('utf8');
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const i = line.indexOf(':');
            fields[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, '');
          }
          if (fields.data !== undefined) this.messages.push({ id: fields.id ?? '', event: fields.event ?? 'message', data: JSON.parse(fields.data) });
        }
      }
    } catch (err) {
      if (!this.#closed) throw err;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#body?.destroy();
    if (this.#body && !this.#body.closed) await once(this.#body, 'close').catch(() => undefined);
  }

  lastId(): string {
    return this.messages.at(-1)!.id;
  }
}

async function setup(t: Test) {
  const analyser = new FixedAnalyser();
  const cloud = await startTestCloud(t, { batchWindowS: 0 }, undefined, { analyser });
  const { token } = await claimDevice(cloud);
  const scene = await patternScene();
  const walker = await person(150);
  let n = 0;
  /** One changed frame → one batch → one event. */
  const happen = async () => {
    const bytes = await encode(await paste(scene, walker, 30 + (n % 4) * 140, 60 + (n % 2) * 100));
    await uploadFrame(cloud, token, await describeJpeg(bytes), { capturedAt: cloud.clock.now() + n++ * 30_000 });
    await cloud.analysis.runOnce();
  };
  return { cloud, happen };
}

t.test('who may listen', async (t) => {
  const { cloud } = await setup(t);
  const none = await StreamClient.open(cloud, {});
  t.equal(none.status, 401, 'nobody');
  await none.close();
  const wrong = await StreamClient.open(cloud, { authorization: 'Bearer not-the-token' });
  t.equal(wrong.status, 401, 'a wrong token');
  await wrong.close();
  const session = await StreamClient.open(cloud, { cookie: await loginDashboard(cloud) });
  t.equal(session.status, 200, 'a dashboard session');
  await session.close();
  const bad = await StreamClient.open(cloud, { authorization: `Bearer ${cloud.adminToken}`, 'last-event-id': 'abc' });
  t.equal(bad.status, 400, 'a Last-Event-ID that is not a sequence number');
  await bad.close();
});

t.test('disconnect, events happen, reconnect with Last-Event-ID: each missed message once, in order, then live', async (t) => {
  const { cloud, happen } = await setup(t);
  const auth = { authorization: `Bearer ${cloud.adminToken}` };
  const first = await StreamClient.open(cloud, auth);
  t.equal(first.status, 200);
  await happen();
  // The first event opens the camera's alert: alert.opened, then the event (one transaction).
  await eventually(() => first.messages.some((m) => m.event === 'event'), 'the first event, live');
  t.same(
    first.messages.map((m) => m.event),
    ['alert.opened', 'event'],
  );
  const ev = first.messages.find((m) => m.event === 'event')!;
  t.match(ev.data, { level: 'critical', source: 'vision', summary: 'A person is inside the closed shop.', frames: [{ imageUrl: /^\/admin\/v1\/frames\/frm_/ }] });
  const seen = first.lastId();
  await first.close();

  // While nobody listens: three more events (they join the open alert), an acknowledgement.
  await happen();
  await happen();
  const alertId = first.messages[0]!.data.alert.id;
  await http(cloud.url, 'POST', `/admin/v1/alerts/${alertId}/ack`, { token: cloud.adminToken });
  await happen();
  const missed = await cloud.store.events.streamAfter(Number(seen), 100);
  t.same(
    missed.map((m) => m.type),
    ['event', 'event', 'alert.acknowledged', 'event'],
    'what happened meanwhile, per the log',
  );

  const again = await StreamClient.open(cloud, { ...auth, 'last-event-id': seen });
  await eventually(() => again.messages.length >= 4, 'the missed messages');
  t.same(
    again.messages.map((m) => Number(m.id)),
    missed.map((m) => m.seq),
    'exactly the missed ones, in order',
  );
  t.same(
    again.messages.map((m) => m.event),
    ['event', 'event', 'alert.acknowledged', 'event'],
  );
  t.ok(
    again.messages.every((m, i, all) => i === 0 || Number(m.id) > Number(all[i - 1]!.id)),
    'ids increase',
  );
  t.equal(new Set(again.messages.filter((m) => m.event === 'event').map((m) => m.data.id)).size, 3, 'each event once');
  await happen();
  await eventually(() => again.messages.length === 5, 'then the live one');
  t.equal(again.messages[4]!.event, 'event');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(again.messages.length, 5, 'nothing twice');
  await again.close();
});

t.test('?since=0 replays what is kept; an id older than what is kept gets a reset first', async (t) => {
  const { cloud, happen } = await setup(t);
  await happen();
  await happen();
  const all = await cloud.store.events.streamAfter(0, 100);
  const replay = await StreamClient.open(cloud, { authorization: `Bearer ${cloud.adminToken}` }, '?since=0');
  await eventually(() => replay.messages.length === all.length, 'everything kept');
  t.same(
    replay.messages.map((m) => Number(m.id)),
    all.map((m) => m.seq),
  );
  await replay.close();

  // Retention: messages older than 7 days are pruned; a client that saw only those is told.
  await cloud.store.events.pruneStream(cloud.clock.now() + 1);
  await happen();
  const kept = await cloud.store.events.streamAfter(0, 100);
  const stale = await StreamClient.open(cloud, { authorization: `Bearer ${cloud.adminToken}`, 'last-event-id': String(all[0]!.seq) });
  await eventually(() => stale.messages.length === 1 + kept.length, 'reset, then what is kept');
  t.match(stale.messages[0], { event: 'reset', data: { reason: /no longer kept/ } });
  t.same(
    stale.messages.slice(1).map((m) => Number(m.id)),
    kept.map((m) => m.seq),
  );
  await stale.close();
});

t.test('a cloud closing ends its streams at once', async (t) => {
  const { cloud } = await setup(t);
  const c = await StreamClient.open(cloud, { authorization: `Bearer ${cloud.adminToken}` });
  t.equal(c.status, 200);
  const started = Date.now();
  await cloud.close();
  t.ok(Date.now() - started < 3_000, `closed in ${Date.now() - started} ms, not after the 5 s grace`);
  await c.close();
});
