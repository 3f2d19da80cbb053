import t from 'tap';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { AnalysisError, ANALYSIS_ERRORS, type AnalysisInput, type AnalysisResult, type Analyser } from '../src/analysis/analyser.js';
import { analyserRetryDelay, ResilientAnalyser, type ResilientAnalyserOptions } from '../src/analysis/resilient-analyser.js';
import { VisionAnalyser } from '../src/analysis/vision-analyser.js';
import { systemSleep, type Clock } from '../src/lib/clock.js';
import { ChatClient } from '../src/llm/chat-client.js';
import { OpenAiTestDouble } from './doubles/openai-double.js';
import { eventually, makeJpeg } from './helpers.js';

// The protection around an analyser: retries (how many, how long between), the circuit breaker
// driven by real HTTP failures from the scripted test double, the concurrency limit measured at
// the double, and that no call is lost: each resolves or rejects with a classified error.

/** Time that jumps by each sleep at once: a test sees the delays asked for, without waiting. */
function jumpClock(start = Date.UTC(2026, 11, 6, 1, 0, 0)): Clock & { sleeps: number[]; advance(ms: number): void } {
  let now = start;
  const sleeps: number[] = [];
  return {
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    sleeps,
    advance: (ms) => void (now += ms),
  };
}

function memoryLogger() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines, messages: (re: RegExp) => lines.filter((l) => re.test(l.msg)).map((l) => l.msg) };
}

const GOOD_ANSWER = JSON.stringify({ observations: ['an empty yard'], reasoning: 'Nothing moves.', riskScore: 3, level: 'low', summary: 'All quiet.' });

const RESULT: AnalysisResult = {
  assessment: { riskScore: 3, level: 'low', summary: 'All quiet.', reasoning: 'Nothing moves.', observations: [] },
  offSpec: null,
  model: 'scripted',
  attempts: 1,
  latencyMs: 5,
  usage: null,
};

/** An in-memory analyser that plays a script of results and errors (a test double). */
class ScriptedAnalyser implements Analyser {
  readonly name = 'scripted';
  calls = 0;
  constructor(readonly script: (AnalysisResult | Error)[]) {}
  async analyse(): Promise<AnalysisResult> {
    this.calls++;
    const next = this.script.shift() ?? RESULT;
    if (next instanceof Error) throw next;
    return next;
  }
}

let input: AnalysisInput;
t.before(async () => {
  input = {
    camera: { id: 'cam-1', name: 'Yard', site: 'Depot', context: null },
    localTime: '2026-12-06 02:00 (Sunday), Europe/Paris',
    closed: true,
    frames: [{ capturedAt: Date.UTC(2026, 11, 6, 1, 0, 0), jpeg: (await makeJpeg(3, 64, 48)).bytes, detections: [] }],
  };
});

const err = (code: keyof typeof ANALYSIS_ERRORS, retryAfterMs?: number) => new AnalysisError(code, code.toLowerCase(), { retryAfterMs });

function resilient(analyser: Analyser, o: Partial<ResilientAnalyserOptions> = {}) {
  const clock = jumpClock();
  const log = memoryLogger();
  const r = new ResilientAnalyser({ analyser, clock, random: () => 0.5, logger: log.logger, ...o });
  return { r, clock: (o.clock as ReturnType<typeof jumpClock> | undefined) ?? clock, log };
}

t.test('the retry delay: 1 s, 2 s, 4 s … capped at 30 s, jittered ±20 %', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 9].map((n) => analyserRetryDelay(n, () => 0.5)), [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  t.equal(analyserRetryDelay(1, () => 0), 800);
  t.equal(analyserRetryDelay(1, () => 0.999_999), 1_200);
  t.equal(analyserRetryDelay(6, () => 0.999_999), 30_000, 'jitter never takes it past the cap');
  t.equal(analyserRetryDelay(6, () => 0), 24_000);
});

t.test('transient failures are retried up to 3 times with backoff; the rest are not', async (t) => {
  {
    const inner = new ScriptedAnalyser([err('ANALYSER_TIMEOUT'), err('ANALYSER_SERVER_ERROR'), err('ANALYSER_UNREACHABLE')]);
    const { r, clock } = resilient(inner);
    const res = await r.analyse(input);
    t.equal(res.attempts, 4, 'three failures, then the answer');
    t.same(clock.sleeps, [1_000, 2_000, 4_000]);
  }
  {
    const inner = new ScriptedAnalyser([err('ANALYSER_SERVER_ERROR'), err('ANALYSER_SERVER_ERROR'), err('ANALYSER_SERVER_ERROR'), err('ANALYSER_SERVER_ERROR'), RESULT]);
    const { r, clock, log } = resilient(inner);
    await t.rejects(r.analyse(input), { code: 'ANALYSER_SERVER_ERROR', attempts: 4, retryable: true, retryAt: undefined });
    t.equal(inner.calls, 4, 'gave up after 3 retries');
    t.same(clock.sleeps, [1_000, 2_000, 4_000]);
    t.same(log.messages(/retrying/).length, 3);
    t.same(log.messages(/failed after retries/), ['analysis failed after retries']);
    t.match(r.status(), { lastError: 'ANALYSER_SERVER_ERROR: analyser_server_error', lastSuccessAt: null });
  }
  for (const code of ['ANALYSER_AUTH', 'ANALYSER_REJECTED', 'ANALYSER_BAD_RESPONSE', 'ANALYSER_INPUT_INVALID', 'ANALYSER_ABORTED'] as const) {
    const inner = new ScriptedAnalyser([err(code), RESULT]);
    const { r, clock } = resilient(inner);
    await t.rejects(r.analyse(input), { code, attempts: 1 }, code);
    t.equal(inner.calls, 1, `${code}: not retried`);
    t.same(clock.sleeps, []);
  }
  {
    const inner = new ScriptedAnalyser([new TypeError('x is undefined')]);
    const { r } = resilient(inner);
    await t.rejects(r.analyse(input), { code: 'ANALYSER_INTERNAL', retryable: false, message: /x is undefined/ }, 'a foreign throw is classified too');
  }
});

t.test('429: Retry-After is waited up to 30 s; a longer one ends the call with retryAt', async (t) => {
  {
    const inner = new ScriptedAnalyser([err('ANALYSER_RATE_LIMITED', 7_000), err('ANALYSER_RATE_LIMITED'), RESULT]);
    const { r, clock } = resilient(inner);
    t.equal((await r.analyse(input)).attempts, 3);
    t.same(clock.sleeps, [7_000, 2_000], "the server's 7 s, then the ladder's 2 s when it gave none");
  }
  {
    const inner = new ScriptedAnalyser([err('ANALYSER_RATE_LIMITED', 45_000), RESULT]);
    const { r, clock } = resilient(inner);
    const started = clock.now();
    await t.rejects(r.analyse(input), { code: 'ANALYSER_RATE_LIMITED', attempts: 1, retryable: true, retryAt: started + 45_000 });
    t.same(clock.sleeps, [], 'no slot held for 45 s');
  }
  {
    const inner = new ScriptedAnalyser(Array.from({ length: 4 }, () => err('ANALYSER_RATE_LIMITED', 1_000)));
    const { r, clock } = resilient(inner);
    await t.rejects(r.analyse(input), { code: 'ANALYSER_RATE_LIMITED', attempts: 4 });
    t.equal(r.status().state, 'closed', '429s never trip the breaker');
    t.equal(r.status().consecutiveFailures, 0);
    t.same(clock.sleeps, [1_000, 1_000, 1_000]);
  }
});

t.test('the breaker over real HTTP: closed → open → half-open → closed, and → open on a failed probe; 4xx never trip it', async (t) => {
  const model = await OpenAiTestDouble.start(t);
  model.fallback = { content: GOOD_ANSWER };
  const client = new ChatClient({ baseUrl: model.baseUrl, model: 'vision', timeoutMs: 2_000 });
  t.teardown(() => client.close());
  const { r, clock, log } = resilient(new VisionAnalyser({ client }));

  for (let i = 0; i < 12; i++) model.script.push({ status: 400, body: '{"error":{"message":"image too large"}}' });
  for (let i = 0; i < 12; i++) await t.rejects(r.analyse(input), { code: 'ANALYSER_REJECTED', attempts: 1 });
  t.match(r.status(), { state: 'closed', consecutiveFailures: 0 }, '12 refusals (4xx) do not trip it');
  model.requests.length = 0;

  for (let i = 0; i < 5; i++) model.script.push({ status: 500, body: '{"error":{"message":"CUDA out of memory"}}' });
  await t.rejects(r.analyse(input), { code: 'ANALYSER_SERVER_ERROR', attempts: 4 });
  t.match(r.status(), { state: 'closed', consecutiveFailures: 4 });
  // The fifth failure opens it; the call's own next retry is then refused.
  const second = (await r.analyse(input).catch((e: unknown) => e)) as AnalysisError;
  const openedAt = clock.now();
  t.match(second, { code: 'ANALYSER_BREAKER_OPEN', attempts: 1, retryable: true });
  t.equal(model.requests.length, 5, 'five calls reached the server');
  t.match(r.status(), { state: 'open', consecutiveFailures: 5, nextProbeAt: second.retryAt });
  t.equal(second.retryAt, r.status().openedAt! + 60_000);
  t.equal(r.status().openedAt, openedAt);

  const refusedAt = clock.now();
  const third = (await r.analyse(input).catch((e: unknown) => e)) as AnalysisError;
  t.match(third, { code: 'ANALYSER_BREAKER_OPEN', attempts: 0, retryAt: openedAt + 60_000 }, 'refused at once');
  t.equal(clock.now(), refusedAt, 'no waiting');
  t.equal(model.requests.length, 5, 'nothing sent while open');
  t.same(log.messages(/circuit breaker/), ['analyser circuit breaker open: calls are refused until the next probe']);

  clock.advance(60_000);
  t.equal(r.status().state, 'half-open');
  t.equal((await r.analyse(input)).attempts, 1, 'the first probe answers');
  t.equal(r.status().state, 'half-open');
  await r.analyse(input);
  t.match(r.status(), { state: 'closed', consecutiveFailures: 0, openedAt: null, nextProbeAt: null }, 'two successes close it');
  t.equal(model.requests.length, 7);

  for (let i = 0; i < 5; i++) model.script.push({ status: 503, body: '' });
  await t.rejects(r.analyse(input), { code: 'ANALYSER_SERVER_ERROR' });
  await t.rejects(r.analyse(input), { code: 'ANALYSER_BREAKER_OPEN' });
  clock.advance(60_000);
  model.script.push({ reset: true });
  const probe = (await r.analyse(input).catch((e: unknown) => e)) as AnalysisError;
  t.match(probe, { code: 'ANALYSER_BREAKER_OPEN', attempts: 1 }, 'the failed probe reopens it, so its retry is refused');
  t.match(r.status(), { state: 'open', openedAt: clock.now(), nextProbeAt: clock.now() + 60_000 });
  t.same(log.messages(/circuit breaker/), [
    'analyser circuit breaker open: calls are refused until the next probe',
    'analyser circuit breaker half-open',
    'analyser circuit breaker closed',
    'analyser circuit breaker open: calls are refused until the next probe',
    'analyser circuit breaker half-open',
    'analyser circuit breaker open: calls are refused until the next probe',
  ]);
});

t.test('read timeout, reset and a refused connection are retried', async (t) => {
  const model = await OpenAiTestDouble.start(t);
  model.fallback = { content: GOOD_ANSWER };
  const client = new ChatClient({ baseUrl: model.baseUrl, model: 'vision', timeoutMs: 200 });
  t.teardown(() => client.close());
  const { r, clock } = resilient(new VisionAnalyser({ client }));
  model.script.push({ hang: true }, { reset: true }, { stallBody: true });
  const res = await r.analyse(input);
  t.equal(res.attempts, 4, 'hang, reset, stalled body, then the answer');
  t.same(res.assessment.summary, 'All quiet.');
  t.same(clock.sleeps, [1_000, 2_000, 4_000]);

  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const dead = new ChatClient({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'vision', timeoutMs: 500 });
  t.teardown(() => dead.close());
  const d = resilient(new VisionAnalyser({ client: dead }));
  await t.rejects(d.r.analyse(input), { code: 'ANALYSER_UNREACHABLE', attempts: 4, retryable: true });
  t.same(d.clock.sleeps, [1_000, 2_000, 4_000]);
});

t.test('concurrency: 10 calls against a slow double (300 ms), never more than 4 at the server', async (t) => {
  const model = await OpenAiTestDouble.start(t);
  model.fallback = { content: GOOD_ANSWER, delayMs: 300 };
  const client = new ChatClient({ baseUrl: model.baseUrl, model: 'vision', timeoutMs: 5_000 });
  t.teardown(() => client.close());
  const { r } = resilient(new VisionAnalyser({ client }));
  const started = Date.now();
  const calls = Array.from({ length: 10 }, () => r.analyse(input));
  await eventually(() => model.inFlight === 4, 'the first 4 calls at the server');
  t.match(r.status(), { inFlight: 4, queued: 6 }, 'status shows the line');
  const results = await Promise.all(calls);
  const took = Date.now() - started;
  t.equal(results.length, 10);
  t.equal(model.requests.length, 10);
  t.equal(model.maxInFlight, 4, 'never more than 4 at once, measured at the server');
  t.ok(took >= 900 && took < 5_000, `3 rounds of 300 ms: ${took} ms`);
  t.match(r.status(), { inFlight: 0, queued: 0 });

  const one = resilient(new VisionAnalyser({ client }), { concurrency: 1 });
  model.maxInFlight = 0;
  await Promise.all(Array.from({ length: 3 }, () => one.r.analyse(input)));
  t.equal(model.maxInFlight, 1, 'concurrency 1 is one at a time');
});

t.test('no call is lost: 30 calls over mixed failures all settle, classified', async (t) => {
  const model = await OpenAiTestDouble.start(t);
  model.fallback = { content: GOOD_ANSWER };
  const client = new ChatClient({ baseUrl: model.baseUrl, model: 'vision', timeoutMs: 300 });
  t.teardown(() => client.close());
  const { r } = resilient(new VisionAnalyser({ client }));
  const menu = [
    { content: GOOD_ANSWER },
    { content: 'not json at all' },
    { status: 500, body: '' },
    { status: 400, body: '' },
    { status: 429, body: '', headers: { 'retry-after': '1' } },
    { hang: true as const },
    { reset: true as const },
  ];
  for (let i = 0; i < 60; i++) model.script.push(menu[(i * 5) % menu.length]!);
  const settled = await Promise.allSettled(Array.from({ length: 30 }, () => r.analyse(input)));
  t.equal(settled.length, 30);
  const codes = new Map<string, number>();
  for (const s of settled) {
    if (s.status === 'fulfilled') {
      const key = s.value.offSpec ? 'result (off-spec)' : 'result';
      codes.set(key, (codes.get(key) ?? 0) + 1);
      continue;
    }
    t.ok(s.reason instanceof AnalysisError, 'an AnalysisError');
    const e = s.reason as AnalysisError;
    t.ok(Object.hasOwn(ANALYSIS_ERRORS, e.code), e.code);
    if (e.code === 'ANALYSER_BREAKER_OPEN') t.ok(typeof e.retryAt === 'number' && e.retryAt > 0, 'a breaker refusal says when to come back');
    codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
  }
  t.ok((codes.get('result') ?? 0) > 0, `some answered: ${JSON.stringify(Object.fromEntries(codes))}`);
  t.match(r.status(), { inFlight: 0, queued: 0 });
  t.equal(model.inFlight, 0, 'nothing left hanging at the server');
});

t.test('abort: while waiting in line, and while sleeping before a retry', async (t) => {
  const gate: (() => void)[] = [];
  const slow: Analyser = { name: 'slow', analyse: () => new Promise<AnalysisResult>((res) => gate.push(() => res(RESULT))) };
  const { r } = resilient(slow, { concurrency: 1 });
  const first = r.analyse(input);
  const ac = new AbortController();
  const second = r.analyse(input, ac.signal);
  await new Promise((res) => setImmediate(res));
  t.match(r.status(), { inFlight: 1, queued: 1 });
  ac.abort();
  await t.rejects(second, { code: 'ANALYSER_ABORTED', attempts: 0, retryable: true });
  t.match(r.status(), { inFlight: 1, queued: 0 });
  gate.shift()!();
  t.equal((await first).attempts, 1);

  const failing = new ScriptedAnalyser([err('ANALYSER_SERVER_ERROR')]);
  const sleeping = resilient(failing, { clock: { now: Date.now, sleep: systemSleep }, retryBaseMs: 60_000 });
  const ac2 = new AbortController();
  const started = Date.now();
  const p = sleeping.r.analyse(input, ac2.signal);
  setTimeout(() => ac2.abort(), 50);
  await t.rejects(p, { code: 'ANALYSER_ABORTED', attempts: 1 });
  t.ok(Date.now() - started < 2_000, 'the 60 s backoff ended at the abort');
});
