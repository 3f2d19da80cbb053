import t from 'tap';
import { createServer } from 'node:net';
import { AnalysisError, ANALYSIS_ERRORS, type AnalysisInput } from '../src/analysis/analyser.js';
import { LEVEL_BANDS, readAssessment, SCENE_ASSESSMENT_JSON_SCHEMA, SceneAssessmentSchema } from '../src/analysis/assessment.js';
import { pickFrames, VisionAnalyser } from '../src/analysis/vision-analyser.js';
import { ChatClient } from '../src/llm/chat-client.js';
import { OpenAiTestDouble, type DoubleAnswer } from './doubles/openai-double.js';
import { makeJpeg } from './helpers.js';

// The vision analyser against the scripted OpenAI test double: what the request carries (the
// camera's context, the time, the detector's findings, the chosen frames as real JPEGs), how an
// answer is read, how an off-spec one is kept and flagged, and the code of every failure.

const NEWEST = Date.UTC(2026, 11, 6, 1, 14, 0);

async function batch(n: number): Promise<AnalysisInput> {
  const frames = [];
  for (let i = 0; i < n; i++) {
    frames.push({
      capturedAt: NEWEST - (n - 1 - i) * 30_000,
      jpeg: (await makeJpeg(i + 1, 64, 48)).bytes,
      detections: i === n - 1 ? [{ label: 'person', score: 0.82 }, { label: 'person', score: 0.6 }, { label: 'car', score: 0.4 }] : [],
    });
  }
  return {
    camera: { id: 'cam-3', name: 'Back door', site: 'Cafe Lune', context: 'The yard behind the kitchen. Deliveries 06:00-07:00 only.' },
    localTime: '2026-12-06 02:14 (Sunday), Europe/Paris',
    closed: true,
    frames,
  };
}

const GOOD = {
  observations: ['A person at the back door', 'The door is ajar'],
  reasoning: 'Someone is at the door of a closed site at 2 a.m.; no delivery is due.',
  riskScore: 82,
  level: 'critical',
  summary: 'A person is opening the back door while the cafe is closed.',
};

async function setup(t: Tap, o: { timeoutMs?: number; responseFormat?: 'json_schema' | 'json_object' | 'none' } = {}) {
  const model = await OpenAiTestDouble.start(t);
  const client = new ChatClient({ baseUrl: model.baseUrl, model: 'vision-model', apiKey: 'sk-x', timeoutMs: o.timeoutMs ?? 2_000 });
  t.teardown(() => client.close());
  return { model, analyser: new VisionAnalyser({ client, responseFormat: o.responseFormat }) };
}
type Tap = Parameters<typeof OpenAiTestDouble.start>[0];

t.test('frames sent: at most maxImages, evenly spread, always the newest', async (t) => {
  const cases: [number, number, number[]][] = [
    [1, 4, [0]],
    [3, 4, [0, 1, 2]],
    [5, 4, [0, 1, 3, 4]],
    [7, 4, [0, 2, 4, 6]],
    [10, 4, [0, 3, 6, 9]],
    [5, 1, [4]],
    [0, 4, []],
  ];
  for (const [n, max, want] of cases) t.same(pickFrames(n, max), want, `${n} frames, ${max} images`);
});

t.test('the request: context, time, detections, real JPEGs of the chosen frames, the schema', async (t) => {
  const { model, analyser } = await setup(t);
  model.script.push({ content: JSON.stringify(GOOD) });
  const input = await batch(10);
  const r = await analyser.analyse(input);

  const body = model.requests[0]!.body;
  t.equal(body.model, 'vision-model');
  t.equal(body.temperature, 0);
  t.equal(body.max_tokens, 800);
  t.same(body.response_format, { type: 'json_schema', json_schema: { name: 'scene_assessment', schema: SCENE_ASSESSMENT_JSON_SCHEMA, strict: true } });
  const [system, user] = body.messages;
  t.equal(system.role, 'system');
  t.match(system.content, JSON.stringify(SCENE_ASSESSMENT_JSON_SCHEMA), 'the schema is in the prompt too (servers without response_format)');
  t.match(system.content, 'low 0-24, medium 25-49, high 50-74, critical 75-100');
  t.match(system.content, /data, not instructions/);
  const [text, ...images] = user.content;
  t.equal(text.type, 'text');
  t.match(text.text, 'Camera: Back door (id cam-3) at site Cafe Lune.');
  t.match(text.text, 'The yard behind the kitchen. Deliveries 06:00-07:00 only.');
  t.match(text.text, 'Local time at the site: 2026-12-06 02:14 (Sunday), Europe/Paris. The site is CLOSED now.');
  t.match(text.text, '(the newest was captured at 2026-12-06T01:14:00.000Z)');
  t.match(text.text, '- frame 1, 270 s before the newest, image 1: detector found nothing');
  t.match(text.text, '- frame 2, 240 s before the newest, no image sent: detector found nothing');
  t.match(text.text, '- frame 10, the newest, image 4: detector found 2 × person 0.82, car 0.40');
  t.equal(images.length, 4);
  const sent = images.map((p: { type: string; image_url: { url: string } }) => {
    t.equal(p.type, 'image_url');
    t.match(p.image_url.url, /^data:image\/jpeg;base64,/);
    return Buffer.from(p.image_url.url.slice('data:image/jpeg;base64,'.length), 'base64');
  });
  t.same(
    sent.map((b: Buffer) => input.frames.findIndex((f) => f.jpeg.equals(b))),
    [0, 3, 6, 9],
    'the bytes sent are the JPEGs of frames 1, 4, 7 and 10',
  );

  t.same(r, { assessment: GOOD, offSpec: null, model: 'vision-model', attempts: 1, latencyMs: r.latencyMs, usage: { promptTokens: 100, completionTokens: 20 } });
  t.ok(r.latencyMs >= 0 && r.latencyMs < 2_000);
});

t.test('the answer format can fall back to json_object or none; an open site and no context', async (t) => {
  const a = await setup(t, { responseFormat: 'json_object' });
  a.model.script.push({ content: JSON.stringify(GOOD) });
  const input = await batch(2);
  input.closed = false;
  input.camera.context = null;
  await a.analyser.analyse(input);
  t.same(a.model.requests[0]!.body.response_format, { type: 'json_object' });
  t.match(a.model.requests[0]!.body.messages[1].content[0].text, 'The site is open now.');
  t.match(a.model.requests[0]!.body.messages[1].content[0].text, 'what is normal there: (none given)');
  const b = await setup(t, { responseFormat: 'none' });
  b.model.script.push({ content: JSON.stringify(GOOD) });
  await b.analyser.analyse(input);
  t.notOk('response_format' in b.model.requests[0]!.body);
});

t.test('off-spec answers are kept, flagged and salvaged', async (t) => {
  const { model, analyser } = await setup(t);
  const input = await batch(1);
  const fence = '```json\n' + JSON.stringify(GOOD, null, 2) + '\n```';
  // [name, answer, the assessment's expected fields, problems expected (regexes; none = on spec)]
  const cases: [string, DoubleAnswer, Record<string, unknown>, RegExp[]][] = [
    ['fenced JSON is accepted', { content: fence }, GOOD, []],
    ['prose around the JSON', { content: `Here is my assessment:\n${JSON.stringify(GOOD)}\nStay safe.` }, GOOD, [/text around it/]],
    [
      'not JSON at all',
      { content: 'I see a person near the door, it is dark.' },
      { riskScore: 37, level: 'medium', summary: "The model's answer could not be read.", reasoning: 'I see a person near the door, it is dark.', observations: [] },
      [/^the answer is not JSON$/],
    ],
    [
      'cut off at the token limit',
      { content: '{"observations":["A person"],"reasoning":"At night","riskScore": 82, "level": "critical", "summary": "Intruder at the back door", "extra', finishReason: 'length' },
      { riskScore: 82, level: 'critical', summary: 'Intruder at the back door', observations: [] },
      [/not JSON/, /cut off at the token limit/],
    ],
    ['score out of range', { content: JSON.stringify({ ...GOOD, riskScore: 140 }) }, { riskScore: 100, level: 'critical' }, [/^riskScore: /]],
    [
      'only a level',
      { content: '{"level":"high"}' },
      { riskScore: 62, level: 'high', summary: '(the model gave no summary)', reasoning: '(the model gave no reasoning)', observations: [] },
      [/^riskScore: /, /^summary: /, /^reasoning: /, /^observations: /],
    ],
    ['a numeric string and a lone observation', { content: JSON.stringify({ ...GOOD, riskScore: '70', level: 'high', observations: 'a van' }) }, { riskScore: 70, level: 'high', observations: ['a van'] }, [/^riskScore: /, /^observations: /]],
    ['a level in capitals', { content: JSON.stringify({ ...GOOD, level: 'CRITICAL' }) }, { level: 'critical', riskScore: 82 }, [/^level: /]],
    ['low level, score 90: the score wins', { content: JSON.stringify({ ...GOOD, level: 'low', riskScore: 90 }) }, { level: 'critical', riskScore: 90 }, [/level low and score 90 disagree/]],
    ['critical level, score 10: the level wins', { content: JSON.stringify({ ...GOOD, level: 'critical', riskScore: 10 }) }, { level: 'critical', riskScore: 75 }, [/level critical and score 10 disagree/]],
    ['high with 45 is a judgement call, not a disagreement', { content: JSON.stringify({ ...GOOD, level: 'high', riskScore: 45 }) }, { level: 'high', riskScore: 45 }, []],
    ['JSON but not an object', { content: '[1,2,3]' }, { level: 'medium', riskScore: 37 }, [/not an object/]],
  ];
  for (const [name, answer, want, problems] of cases) {
    model.script.push(answer);
    const r = await analyser.analyse(input);
    t.match(r.assessment, want, `${name}: assessment`);
    t.ok(SceneAssessmentSchema.safeParse(r.assessment).success, `${name}: the salvaged assessment is itself on spec`);
    if (problems.length === 0) {
      t.equal(r.offSpec, null, `${name}: not flagged`);
      continue;
    }
    t.equal(r.offSpec?.raw, (answer as { content: string }).content, `${name}: the raw answer is kept`);
    t.equal(r.offSpec?.problems.length, problems.length, `${name}: ${JSON.stringify(r.offSpec?.problems)}`);
    problems.forEach((p, i) => t.match(r.offSpec?.problems[i], p, `${name}: problem ${i + 1}`));
  }
});

t.test('readAssessment caps long text and keeps only string observations', async (t) => {
  const long = { ...GOOD, summary: 'x'.repeat(600), observations: ['a', 7, '', 'b', ...Array.from({ length: 30 }, (_, i) => `o${i}`)] };
  const { assessment, problems } = readAssessment(JSON.stringify(long));
  t.equal(assessment.summary.length, 500);
  t.same(assessment.observations.slice(0, 3), ['a', 'b', 'o0']);
  t.equal(assessment.observations.length, 20);
  t.ok(problems.some((p) => p.startsWith('summary: ')) && problems.some((p) => p.startsWith('observations')), problems.join('; '));
  for (const [level, [lo, hi]] of Object.entries(LEVEL_BANDS)) {
    t.equal(readAssessment(JSON.stringify({ ...GOOD, level, riskScore: lo })).problems.length, 0, `${level} ${lo}`);
    t.equal(readAssessment(JSON.stringify({ ...GOOD, level, riskScore: hi })).problems.length, 0, `${level} ${hi}`);
  }
});

t.test('every failure has its analysis code', async (t) => {
  const { model, analyser } = await setup(t, { timeoutMs: 300 });
  const input = await batch(2);
  const cases: [string, DoubleAnswer, string, number?][] = [
    ['500', { status: 500, body: '{"error":{"message":"CUDA out of memory"}}' }, 'ANALYSER_SERVER_ERROR', 500],
    ['503', { status: 503, body: '' }, 'ANALYSER_SERVER_ERROR', 503],
    ['429', { status: 429, body: '{}', headers: { 'retry-after': '3' } }, 'ANALYSER_RATE_LIMITED', 429],
    ['401', { status: 401, body: '{"error":{"message":"bad key"}}' }, 'ANALYSER_AUTH', 401],
    ['400', { status: 400, body: '{"error":{"message":"image too large"}}' }, 'ANALYSER_REJECTED', 400],
    ['200, not a completion', { status: 200, body: '<html>proxy login</html>' }, 'ANALYSER_BAD_RESPONSE'],
    ['hang', { hang: true }, 'ANALYSER_TIMEOUT'],
    ['reset', { reset: true }, 'ANALYSER_UNREACHABLE'],
  ];
  for (const [name, answer, code, status] of cases) {
    model.script.push(answer);
    const err = await analyser.analyse(input).catch((e: unknown) => e);
    t.ok(err instanceof AnalysisError, name);
    const e = err as AnalysisError;
    t.equal(e.code, code, name);
    t.equal(e.retryable, ANALYSIS_ERRORS[e.code].retryable, `${name}: retryable from the table`);
    t.equal(e.attempts, 1, name);
    if (status) t.equal(e.status, status, `${name}: status`);
    if (name === '429') t.equal(e.retryAfterMs, 3_000);
  }

  const sent = model.requests.length;
  await t.rejects(analyser.analyse({ ...input, frames: [] }), { code: 'ANALYSER_INPUT_INVALID', retryable: false, attempts: 0 });
  t.equal(model.requests.length, sent, 'nothing sent for an empty batch');

  const ac = new AbortController();
  model.script.push({ hang: true });
  const p = analyser.analyse(input, ac.signal);
  setTimeout(() => ac.abort(), 50);
  await t.rejects(p, { code: 'ANALYSER_ABORTED', retryable: true });

  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const dead = new ChatClient({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm', timeoutMs: 1_000 });
  t.teardown(() => dead.close());
  await t.rejects(new VisionAnalyser({ client: dead }).analyse(input), { code: 'ANALYSER_UNREACHABLE', retryable: true, transient: true });
});

t.test('error codes: retryable, transient, and what the breaker makes of them', async (t) => {
  t.same(
    Object.fromEntries(Object.entries(ANALYSIS_ERRORS).map(([code, v]) => [code, `${v.retryable ? 'retryable' : 'permanent'}/${v.transient ? 'retry now' : 'no retry now'}/${v.breaker}`])),
    {
      ANALYSER_UNREACHABLE: 'retryable/retry now/failure',
      ANALYSER_TIMEOUT: 'retryable/retry now/failure',
      ANALYSER_SERVER_ERROR: 'retryable/retry now/failure',
      ANALYSER_RATE_LIMITED: 'retryable/retry now/ignore',
      ANALYSER_AUTH: 'permanent/no retry now/ignore',
      ANALYSER_REJECTED: 'permanent/no retry now/ignore',
      ANALYSER_BAD_RESPONSE: 'permanent/no retry now/ignore',
      ANALYSER_INPUT_INVALID: 'permanent/no retry now/ignore',
      ANALYSER_ABORTED: 'retryable/no retry now/ignore',
      ANALYSER_BREAKER_OPEN: 'retryable/no retry now/ignore',
      ANALYSER_INTERNAL: 'permanent/no retry now/ignore',
    },
  );
  const e = new AnalysisError('ANALYSER_BREAKER_OPEN', 'open', { retryAt: 123 });
  t.equal(e.attempts, 0);
  t.equal(e.with({ attempts: 2 }).retryAt, 123, 'with() keeps what it is not told');
});
