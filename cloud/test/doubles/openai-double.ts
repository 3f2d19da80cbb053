// A test double of an OpenAI-compatible chat completions server (POST /v1/chat/completions)
// on 127.0.0.1: records requests and answers from a script. Not a model: it says what the
// test tells it to.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Tap {
  teardown(fn: () => unknown): void;
}

export interface DoubleRequest {
  url: string;
  headers: IncomingHttpHeaders;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read bodies loosely
  body: any;
}

/** A reply: the assistant's content (200), or an HTTP status with a raw body, optionally late. */
export type DoubleAnswer = { content: string; delayMs?: number } | { status: number; body?: string; headers?: Record<string, string>; delayMs?: number };

export const DEFAULT_DIAGNOSIS = 'Likely cause: the camera stopped answering RTSP. Check its power and network cable.';

export class OpenAiTestDouble {
  readonly requests: DoubleRequest[] = [];
  readonly script: DoubleAnswer[] = [];
  #server!: Server;

  static async start(t: Tap): Promise<OpenAiTestDouble> {
    const d = new OpenAiTestDouble();
    d.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: unknown = null;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          // recorded as null
        }
        d.requests.push({ url: req.url ?? '', headers: req.headers, body });
        const a = d.script.shift() ?? { content: DEFAULT_DIAGNOSIS };
        const answer = () => {
          if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
            res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'no such route' } }));
          } else if ('content' in a) {
            const model = (body as { model?: string } | null)?.model ?? 'unknown';
            res.writeHead(200, { 'content-type': 'application/json' }).end(
              JSON.stringify({
                id: `chatcmpl-${d.requests.length}`,
                object: 'chat.completion',
                model,
                choices: [{ index: 0, message: { role: 'assistant', content: a.content }, finish_reason: 'stop' }],
                usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
              }),
            );
          } else {
            res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(a.body ?? '');
          }
        };
        if (a.delayMs) setTimeout(answer, a.delayMs);
        else answer();
      });
    });
    await new Promise<void>((resolve) => d.#server.listen(0, '127.0.0.1', () => resolve()));
    t.teardown(() => {
      d.#server.closeAllConnections();
      return new Promise<void>((resolve) => d.#server.close(() => resolve()));
    });
    return d;
  }

  /** The base URL to configure (up to and including /v1, as for OpenAI). */
  get baseUrl(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1`;
  }
}
