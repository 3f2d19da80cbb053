import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { CHAT_CONNECT_TIMEOUT_MS, CHAT_READ_TIMEOUT_MS, ChatClient, ChatError } from '../src/llm/chat-client.js';
import { OpenAiTestDouble } from './doubles/openai-double.js';

// The OpenAI-compatible client against a loopback test double: what it sends, and the code of
// every way a call can fail.

t.test('a completion: request shape, bearer key, answer', async (t) => {
  const model = await OpenAiTestDouble.start(t);
  model.script.push({ content: 'It is the cable.' });
  const client = new ChatClient({ baseUrl: `${model.baseUrl}/`, model: 'llama3', apiKey: 'sk-abc', timeoutMs: 2_000 });
  t.teardown(() => client.close());
  const r = await client.complete({
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,AAAA' } }] },
    ],
    maxTokens: 50,
    temperature: 0,
    json: true,
  });
  t.same(r, { content: 'It is the cable.', model: 'llama3', finishReason: 'stop', usage: { promptTokens: 100, completionTokens: 20 } });
  const req = model.requests[0]!;
  t.equal(req.url, '/v1/chat/completions', 'a trailing slash on the base URL is fine');
  t.equal(req.headers.authorization, 'Bearer sk-abc');
  t.same(req.body, {
    model: 'llama3',
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,AAAA' } }] },
    ],
    max_tokens: 50,
    temperature: 0,
    response_format: { type: 'json_object' },
  });

  const noKey = new ChatClient({ baseUrl: model.baseUrl, model: 'llama3', timeoutMs: 2_000 });
  t.teardown(() => noKey.close());
  await noKey.complete({ messages: [{ role: 'user', content: 'hi' }] });
  t.equal(model.requests[1]!.headers.authorization, undefined, 'no key, no header (a local server)');
  t.notOk('max_tokens' in model.requests[1]!.body);
});

t.test('every failure has its code', async (t) => {
  const model = await OpenAiTestDouble.start(t);
  const client = new ChatClient({ baseUrl: model.baseUrl, model: 'm', apiKey: 'sk-secret-value', timeoutMs: 300 });
  t.teardown(() => client.close());
  const cases: [string, Parameters<typeof model.script.push>[0], string, RegExp?, number?][] = [
    ['500', { status: 500, body: '{"error":{"message":"overloaded"}}' }, 'LLM_SERVER_ERROR', /HTTP 500: overloaded/],
    ['429', { status: 429, body: '{}', headers: { 'retry-after': '7' } }, 'LLM_RATE_LIMITED', /HTTP 429/, 7_000],
    ['401', { status: 401, body: '{"error":{"message":"bad key"}}' }, 'LLM_AUTH', /bad key/],
    ['400', { status: 400, body: 'model not found' }, 'LLM_REJECTED', /model not found/],
    ['not JSON', { status: 200, body: '<html>' }, 'LLM_BAD_RESPONSE', /not JSON/],
    ['no choices', { status: 200, body: '{"choices":[]}' }, 'LLM_BAD_RESPONSE', /choices/],
    ['too slow', { content: 'late', delayMs: 1_000 }, 'LLM_TIMEOUT', /300 ms/],
  ];
  for (const [name, answer, code, message, retryAfterMs] of cases) {
    model.script.push(answer);
    const err = await client.complete({ messages: [{ role: 'user', content: 'x' }] }).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof ChatError, name);
    const e = err as ChatError;
    t.equal(e.code, code, name);
    if (message) t.match(e.message, message, name);
    if (retryAfterMs) t.equal(e.retryAfterMs, retryAfterMs, name);
    t.notMatch(e.message, /sk-secret-value/, `${name}: the key is not in the message`);
  }

  const aborted = new AbortController();
  model.script.push({ content: 'late', delayMs: 200 });
  const p = client.complete({ messages: [{ role: 'user', content: 'x' }], signal: aborted.signal });
  aborted.abort();
  await t.rejects(p, { code: 'LLM_ABORTED' });
});

t.test('nothing listening → LLM_UNREACHABLE', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const client = new ChatClient({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm', timeoutMs: 1_000 });
  t.teardown(() => client.close());
  await t.rejects(client.complete({ messages: [{ role: 'user', content: 'x' }] }), { code: 'LLM_UNREACHABLE', retryable: true });
});

t.test('json_schema response_format; json_object and none', async (t) => {
  const model = await OpenAiTestDouble.start(t);
  model.fallback = { content: '{}' };
  const client = new ChatClient({ baseUrl: model.baseUrl, model: 'm', timeoutMs: 2_000 });
  t.teardown(() => client.close());
  const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'], additionalProperties: false };
  await client.complete({ messages: [{ role: 'user', content: 'x' }], jsonSchema: { name: 'thing', schema }, json: true });
  t.same(model.requests[0]!.body.response_format, { type: 'json_schema', json_schema: { name: 'thing', schema, strict: true } }, 'the schema wins over json');
  await client.complete({ messages: [{ role: 'user', content: 'x' }], jsonSchema: { name: 'thing', schema, strict: false } });
  t.equal(model.requests[1]!.body.response_format.json_schema.strict, false);
  await client.complete({ messages: [{ role: 'user', content: 'x' }] });
  t.notOk('response_format' in model.requests[2]!.body, 'nothing asked, nothing sent (servers that reject the field)');
});

t.test('timeouts: the defaults; a hang and a stalled body end at the read timeout', async (t) => {
  t.equal(CHAT_CONNECT_TIMEOUT_MS, 10_000);
  t.equal(CHAT_READ_TIMEOUT_MS, 120_000);
  const model = await OpenAiTestDouble.start(t);
  const client = new ChatClient({ baseUrl: model.baseUrl, model: 'm', timeoutMs: 300 });
  t.teardown(() => client.close());
  for (const answer of [{ hang: true as const }, { stallBody: true as const }]) {
    const name = Object.keys(answer)[0]!;
    model.script.push(answer);
    const started = Date.now();
    await t.rejects(client.complete({ messages: [{ role: 'user', content: 'x' }] }), { code: 'LLM_TIMEOUT', retryable: true, message: /300 ms/ }, name);
    const took = Date.now() - started;
    t.ok(took >= 280 && took < 2_000, `${name}: ended after ${took} ms`);
  }
  await new Promise((r) => setTimeout(r, 20));
  t.equal(model.inFlight, 0, 'the client let go of both calls');
});

t.test('a connection reset mid-call → LLM_UNREACHABLE; a refusal → LLM_BAD_RESPONSE; Retry-After as a date', async (t) => {
  const model = await OpenAiTestDouble.start(t);
  const client = new ChatClient({ baseUrl: model.baseUrl, model: 'm', timeoutMs: 2_000 });
  t.teardown(() => client.close());
  model.script.push({ reset: true });
  await t.rejects(client.complete({ messages: [{ role: 'user', content: 'x' }] }), { code: 'LLM_UNREACHABLE', retryable: true });
  model.script.push({ status: 200, body: JSON.stringify({ model: 'm', choices: [{ message: { content: null, refusal: 'I cannot help with that.' } }] }) });
  await t.rejects(client.complete({ messages: [{ role: 'user', content: 'x' }] }), { code: 'LLM_BAD_RESPONSE', message: /refused: I cannot help/ });
  model.script.push({ status: 429, body: '{}', headers: { 'retry-after': new Date(Date.now() + 20_000).toUTCString() } });
  const err = (await client.complete({ messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e)) as ChatError;
  t.equal(err.code, 'LLM_RATE_LIMITED');
  t.ok(err.retryAfterMs! > 15_000 && err.retryAfterMs! <= 20_000, `HTTP-date Retry-After read as ${err.retryAfterMs} ms`);
});

t.test('no connection within the connect timeout → LLM_UNREACHABLE, long before the read timeout', async (t) => {
  // A listener whose accept queue is full (Python: listen(0), filled, never accept()): the
  // kernel drops further SYNs, so a connect neither succeeds nor fails: it hangs, as to a
  // host that has gone away.
  const py = spawn('python3', ['-c', BLACKHOLE_PY], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => void py.kill());
  const port = Number(await new Promise<string>((resolve) => createInterface({ input: py.stdout! }).once('line', resolve)));
  const client = new ChatClient({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm', timeoutMs: 20_000, connectTimeoutMs: 300 });
  t.teardown(() => client.close());
  const started = Date.now();
  await t.rejects(client.complete({ messages: [{ role: 'user', content: 'x' }] }), { code: 'LLM_UNREACHABLE', retryable: true, message: /no connection .* within 300 ms/ });
  const took = Date.now() - started;
  t.ok(took < 5_000, `gave up after ${took} ms`);
});

const BLACKHOLE_PY = `
import socket, sys
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(('127.0.0.1', port))
    except BlockingIOError: pass
    fill.append(c)
print(port, flush=True)
sys.stdin.read()
`;
