import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import sharp from 'sharp';
import type { AnalysisError, AnalysisInput } from '../src/analysis/analyser.js';
import { ResilientAnalyser } from '../src/analysis/resilient-analyser.js';
import { VisionAnalyser } from '../src/analysis/vision-analyser.js';
import { ChatClient } from '../src/llm/chat-client.js';
import { claimDevice, describeJpeg, eventually, fakeClock, http, startTestCloud, tempDir, uploadFrame } from './helpers.js';

// The vision analyser against a third-party OpenAI-compatible server: @dwmkerr/mock-llm from
// npm, run as its own process on loopback with rules written here. Its rules match on the
// request (JMESPath), so an answer proves what the request carried: the good assessment comes
// back only when the request holds 4 real JPEGs as data URIs, the camera's context, the closed
// site and a json_schema response_format. It counts nothing itself, but logs every request
// ("POST /v1/chat/completions"), which is how the test counts retries at the server.
// Note: its JSON body limit is Express's default 100 kB, so the frames here are small.

const ANSWER = {
  observations: ['A person in dark clothes at the back door', 'The door is open'],
  reasoning: 'The site is closed and no delivery is due; someone is entering.',
  riskScore: 88,
  level: 'critical',
  summary: 'Someone is entering by the back door while the cafe is closed.',
};

const IMAGES = "body.messages[-1].content[?type=='image_url']";
const TEXT = 'body.messages[-1].content[0].text';
const CARRIES_ALL = [
  `length(${IMAGES} || \`[]\`) == \`4\``,
  `starts_with(body.messages[-1].content[1].image_url.url, 'data:image/jpeg;base64,/9j/')`,
  `starts_with(body.messages[-1].content[4].image_url.url, 'data:image/jpeg;base64,/9j/')`,
  `contains(${TEXT}, 'Camera: Back door (id cam-3) at site Cafe Lune.')`,
  `contains(${TEXT}, 'Deliveries 06:00-07:00 only.')`,
  `contains(${TEXT}, 'The site is CLOSED now.')`,
  `contains(${TEXT}, 'person 0.82')`,
  `body.response_format.type == 'json_schema'`,
  `body.response_format.json_schema.schema.properties.level.enum[3] == 'critical'`,
].join(' && ');

function completion(content: unknown, model: string): string {
  return JSON.stringify({
    id: 'chatcmpl-mock',
    object: 'chat.completion',
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: typeof content === 'string' ? content : JSON.stringify(content) }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1234, completion_tokens: 56, total_tokens: 1290 },
  });
}

// YAML is a superset of JSON, so the rules are written as JSON. Last matching rule wins.
const RULES = {
  rules: [
    {
      path: '/v1/chat/completions',
      method: 'POST',
      match: '@',
      response: { status: 200, content: completion({ ...ANSWER, riskScore: 0, level: 'low', summary: 'UNMATCHED: the request lacked something' }, 'mock-fallback') },
    },
    { path: '/v1/chat/completions', method: 'POST', match: CARRIES_ALL, response: { status: 200, content: completion(ANSWER, 'mock-vision') } },
    {
      path: '/v1/chat/completions',
      method: 'POST',
      match: "body.model == 'rambling'",
      response: { status: 200, content: completion(`Sure! Here is the JSON:\n${JSON.stringify({ ...ANSWER, level: 'low' })}`, 'rambling') },
    },
    // The whole pipeline's request: one frame of the camera, the site closed, a JSON schema.
    {
      path: '/v1/chat/completions',
      method: 'POST',
      match: [
        "body.model == 'pipeline-vision'",
        `length(${IMAGES} || \`[]\`) == \`1\``,
        `starts_with(body.messages[-1].content[1].image_url.url, 'data:image/jpeg;base64,/9j/')`,
        `contains(${TEXT}, 'The site is CLOSED now.')`,
        `body.response_format.type == 'json_schema'`,
      ].join(' && '),
      response: { status: 200, content: completion(ANSWER, 'pipeline-vision') },
    },
    {
      path: '/v1/chat/completions',
      method: 'POST',
      match: "body.model == 'overloaded'",
      response: { status: 429, content: '{"error":{"message":"Rate limit","type":"rate_limit_error"}}' },
    },
  ],
};

interface MockLlm {
  baseUrl: string;
  /** Requests it has logged so far (its log line may come just after the answer). */
  requests: () => number;
}

/** Waits for the server's log to reach `n` requests, then checks no more come. */
async function requestsSeen(server: MockLlm, n: number): Promise<number> {
  await eventually(() => server.requests() >= n, `${n} requests in mock-llm's log`, 2_000).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 50));
  return server.requests();
}

async function startMockLlm(t: Tap): Promise<MockLlm> {
  const dir = tempDir(t, 'vigil-mock-llm-');
  writeFileSync(join(dir, 'mock-llm.yaml'), JSON.stringify(RULES, null, 2));
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const main = join(dirname(createRequire(import.meta.url).resolve('@dwmkerr/mock-llm/package.json')), 'dist', 'main.js');
  // HOST: it binds every interface unless told.
  const child: ChildProcess = spawn(process.execPath, [main], { cwd: dir, env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  let posts = 0;
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mock-llm did not start: ${stderr.join('')}`)), 15_000);
    child.once('exit', (code) => reject(new Error(`mock-llm exited (${code}): ${stderr.join('')}`)));
    lines.on('line', (line) => {
      if (line.includes(`server running on 127.0.0.1:${port}`)) {
        clearTimeout(timer);
        resolve();
      }
      if (line === 'POST /v1/chat/completions') posts++;
    });
  });
  return { baseUrl: `http://127.0.0.1:${port}/v1`, requests: () => posts };
}
type Tap = Parameters<typeof tempDir>[0];

async function input(): Promise<AnalysisInput> {
  const frames = [];
  for (let i = 0; i < 6; i++) {
    // A real scene-like JPEG: a grey yard with a dark figure that moves right.
    const jpeg = await sharp({ create: { width: 160, height: 120, channels: 3, background: { r: 90, g: 95, b: 100 } } })
      .composite([{ input: { create: { width: 20, height: 50, channels: 3, background: { r: 20, g: 20, b: 25 } } }, left: 10 + i * 20, top: 50 }])
      .jpeg({ quality: 70 })
      .toBuffer();
    frames.push({ capturedAt: Date.UTC(2026, 11, 6, 1, 14) - (5 - i) * 10_000, jpeg, detections: i === 5 ? [{ label: 'person', score: 0.82 }] : [] });
  }
  return {
    camera: { id: 'cam-3', name: 'Back door', site: 'Cafe Lune', context: 'The yard behind the kitchen. Deliveries 06:00-07:00 only.' },
    localTime: '2026-12-06 02:14 (Sunday), Europe/Paris',
    closed: true,
    frames,
  };
}

const silent = pino({ level: 'silent' });

// One server for the file (it takes about 2 s to start); tests count requests as differences.
let server: MockLlm;
t.before(async () => {
  server = await startMockLlm(t);
});

t.test('mock-llm: a structured answer, given only to a request that carries the images and the context', async (t) => {
  const before = server.requests();
  const client = new ChatClient({ baseUrl: server.baseUrl, model: 'llava', timeoutMs: 10_000 });
  t.teardown(() => client.close());
  const analyser = new VisionAnalyser({ client });
  const batch = await input();
  const r = await analyser.analyse(batch);
  t.same(r.assessment, ANSWER, 'the matching rule answered');
  t.equal(r.offSpec, null);
  t.equal(r.model, 'mock-vision');
  t.same(r.usage, { promptTokens: 1234, completionTokens: 56 });

  // The rules are strict enough to fail: without the context, the fallback answers.
  const bare = await analyser.analyse({ ...batch, camera: { ...batch.camera, context: null } });
  t.match(bare.assessment.summary, /^UNMATCHED/, 'a request without the context does not match');
  const few = await new VisionAnalyser({ client, maxImages: 3 }).analyse(batch);
  t.match(few.assessment.summary, /^UNMATCHED/, 'nor one with 3 images');
  const noSchema = await new VisionAnalyser({ client, responseFormat: 'json_object' }).analyse(batch);
  t.match(noSchema.assessment.summary, /^UNMATCHED/, 'nor one without the json_schema');
  t.equal((await requestsSeen(server, before + 4)) - before, 4);
});

t.test('mock-llm: prose around an answer whose level contradicts its score is kept and flagged', async (t) => {
  const client = new ChatClient({ baseUrl: server.baseUrl, model: 'rambling', timeoutMs: 10_000 });
  t.teardown(() => client.close());
  const r = await new VisionAnalyser({ client }).analyse(await input());
  t.match(r.assessment, { level: 'critical', riskScore: 88, summary: ANSWER.summary });
  t.same(r.offSpec?.problems, ['the JSON came with text around it', 'level low and score 88 disagree (the low band is 0-24)']);
  t.match(r.offSpec?.raw, /^Sure! Here is the JSON:/);
});

t.test("mock-llm: its 'overloaded' 429 is retried 3 times, then reported", async (t) => {
  await requestsSeen(server, 0);
  const before = server.requests();
  const client = new ChatClient({ baseUrl: server.baseUrl, model: 'overloaded', timeoutMs: 10_000 });
  t.teardown(() => client.close());
  let now = Date.UTC(2026, 11, 6, 1, 0);
  const sleeps: number[] = [];
  const analyser = new ResilientAnalyser({
    analyser: new VisionAnalyser({ client }),
    clock: { now: () => now, sleep: async (ms) => void (sleeps.push(ms), (now += ms)) },
    random: () => 0.5,
    logger: silent,
  });
  const err = (await analyser.analyse(await input()).catch((e: unknown) => e)) as AnalysisError;
  t.match(err, { name: 'AnalysisError', code: 'ANALYSER_RATE_LIMITED', retryable: true, attempts: 4, status: 429, message: /HTTP 429: Rate limit/ });
  t.equal(err.retryAt, undefined, 'it sent no Retry-After, so the queue decides when');
  t.same(sleeps, [1_000, 2_000, 4_000], 'no Retry-After: the backoff ladder');
  t.equal((await requestsSeen(server, before + 4)) - before, 4, 'four requests reached the server');
  t.match(analyser.status(), { state: 'closed', consecutiveFailures: 0 }, 'a 429 does not trip the breaker');
});

t.test('mock-llm behind the whole pipeline: a frame uploaded to the cloud becomes its event and alert', async (t) => {
  const server = await startMockLlm(t);
  const night = Date.UTC(2026, 11, 6, 1, 14);
  const cloud = await startTestCloud(t, { visionBaseUrl: server.baseUrl, visionModel: 'pipeline-vision', batchWindowS: 0 }, fakeClock(night));
  const { token } = await claimDevice(cloud);
  const site = (await cloud.store.listSites())[0]!;
  await http(cloud.url, 'PUT', `/admin/v1/sites/${site.id}/analysis`, { token: cloud.adminToken, json: { timezone: 'Europe/Paris', closedHours: '22:00-07:00' } });
  // A compressed frame as the agent makes them, small enough for mock-llm's 100 kB body limit.
  const jpeg = await sharp({ create: { width: 320, height: 180, channels: 3, background: { r: 90, g: 95, b: 100 } } })
    .composite([{ input: { create: { width: 30, height: 80, channels: 3, background: { r: 20, g: 20, b: 25 } } }, left: 140, top: 60 }])
    .jpeg({ quality: 70 })
    .toBuffer();
  await uploadFrame(cloud, token, await describeJpeg(jpeg), { capturedAt: night });
  await cloud.analysis.runOnce();
  const [e] = (await http<{ source: string; model: string; level: string; summary: string; alertId: string | null }[]>(cloud.url, 'GET', '/admin/v1/events', { token: cloud.adminToken })).body;
  t.match(e, { source: 'vision', model: 'pipeline-vision', level: 'critical', summary: ANSWER.summary }, "mock-llm's answer to the request it matched");
  t.ok(e?.alertId, 'a critical event raises an alert');
  t.equal(await requestsSeen(server, 1), 1, 'one call');
});
