import t from 'tap';
import { createServer } from 'node:net';
import { ChatClient, ChatError } from '../src/llm/chat-client.js';
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
