// Vision analysis throughput through the whole client path (prompt with 4 real JPEGs, HTTP,
// answer validation, the resilient wrapper) against the scripted OpenAI test double, which
// answers each call after 200 ms, as a model server with parallel slots would: 40 jobs at
// concurrency 1 and 4. And the same with an instant answer: the cloud's own cost per job.
import { pino } from 'pino';
import sharp from 'sharp';
import { ResilientAnalyser } from '../cloud/dist/analysis/resilient-analyser.js';
import { VisionAnalyser } from '../cloud/dist/analysis/vision-analyser.js';
import type { AnalysisInput } from '../cloud/dist/analysis/analyser.js';
import { systemSleep } from '../cloud/dist/lib/clock.js';
import { ChatClient } from '../cloud/dist/llm/chat-client.js';
import { OpenAiTestDouble } from '../cloud/test/doubles/openai-double.ts';
import { percentile, report } from './lib.ts';

const JOBS = 40;
const ANSWER_MS = 200;
const ANSWER = JSON.stringify({ observations: ['an empty yard'], reasoning: 'Nothing moves.', riskScore: 3, level: 'low', summary: 'All quiet.' });

const teardown: (() => unknown)[] = [];
const model = await OpenAiTestDouble.start({ teardown: (fn) => teardown.push(fn) });

const frames = [];
for (let i = 0; i < 8; i++) {
  const jpeg = await sharp({ create: { width: 640, height: 360, channels: 3, background: { r: 110, g: 110, b: 110 }, noise: { type: 'gaussian', mean: 110, sigma: 30 } } }).jpeg({ quality: 60 }).toBuffer();
  frames.push({ capturedAt: 1_765_000_000_000 + i * 30_000, jpeg, detections: [{ label: 'person', score: 0.7 }] });
}
const input: AnalysisInput = {
  camera: { id: 'cam-1', name: 'Yard', site: 'Depot', context: 'The loading yard; trucks from 06:00.' },
  localTime: '2026-12-06 02:00 (Sunday), Europe/Paris',
  closed: true,
  frames,
};

async function run(concurrency: number, answerMs: number): Promise<{ jobsPerS: number; p95: number; maxAtServer: number }> {
  model.fallback = { content: ANSWER, delayMs: answerMs };
  model.maxInFlight = 0;
  const client = new ChatClient({ baseUrl: model.baseUrl, model: 'bench-vision', timeoutMs: 30_000 });
  const analyser = new ResilientAnalyser({
    analyser: new VisionAnalyser({ client }),
    clock: { now: Date.now, sleep: systemSleep },
    logger: pino({ level: 'silent' }),
    concurrency,
  });
  const latencies: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: JOBS }, async () => {
      const started = performance.now();
      await analyser.analyse(input);
      latencies.push(performance.now() - started);
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  await client.close();
  return { jobsPerS: JOBS / secs, p95: percentile(latencies, 95), maxAtServer: model.maxInFlight };
}

for (const c of [1, 4]) {
  const r = await run(c, ANSWER_MS);
  report(`analyser_jobs_per_s_c${c}_${ANSWER_MS}ms`, r.jobsPerS, 'jobs/s');
  report(`analyser_wait_p95_c${c}_${ANSWER_MS}ms`, Math.round(r.p95), 'ms');
  report(`analyser_max_at_server_c${c}`, r.maxAtServer, 'calls');
}
const instant = await run(4, 0);
report('analyser_jobs_per_s_c4_instant', instant.jobsPerS, 'jobs/s');
// With the model out of the way: the cloud's own time per job (prompt, base64, HTTP, parsing).
report('analyser_ms_per_job_instant', 1000 / instant.jobsPerS, 'ms');
report('analyser_request_bytes', JSON.stringify(model.requests.at(-1)!.body).length, 'bytes');

for (const fn of teardown) await fn();
