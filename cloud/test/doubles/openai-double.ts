// A test double of an OpenAI-compatible chat completions server (POST /v1/chat/completions)
// on 127.0.0.1: records requests and answers from a script. Not a model: it says what the
// test tells it to, including the failures a real server cannot be made to produce on demand
// (a hang, a stalled body, a reset connection), and it counts the calls it holds at once.
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

/**
 * A reply: the assistant's content (200; finishReason defaults to 'stop'), an HTTP status with
 * a raw body, optionally late; or a failure: `hang` never answers, `stallBody` sends 200 headers
 * and then nothing, `reset` closes the connection without a word.
 */
export type DoubleAnswer =
  | { content: string; finishReason?: string; delayMs?: number }
  | { status: number; body?: string; headers?: Record<string, string>; delayMs?: number }
  | { hang: true }
  | { stallBody: true }
  | { reset: true };

export const DEFAULT_DIAGNOSIS = 'Likely cause: the camera stopped answering RTSP. Check its power and network cable.';

export class OpenAiTestDouble {
  readonly requests: DoubleRequest[] = [];
  readonly script: DoubleAnswer[] = [];
  /** The answer when the script is empty. */
  fallback: DoubleAnswer = { content: DEFAULT_DIAGNOSIS };
  /** Requests received and not yet answered (or given up by the client), and the most ever. */
  inFlight = 0;
  maxInFlight = 0;
  #server!: Server;

  static async start(t: Tap): Promise<OpenAiTestDouble> {
    const d = new OpenAiTestDouble();
    d.#server = createServer((req, res) => {
      d.inFlight++;
      d.maxInFlight = Math.max(d.maxInFlight, d.inFlight);
      let open = true;
      const done = (): void => {
        if (open) d.inFlight--;
        open = false;
      };
      res.on('close', done);
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
        const a = d.script.shift() ?? d.fallback;
        if ('hang' in a) return;
        if ('reset' in a) return void req.socket.destroy();
        if ('stallBody' in a) return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' }).write('{"id":');
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
                choices: [{ index: 0, message: { role: 'assistant', content: a.content }, finish_reason: a.finishReason ?? 'stop' }],
                usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
              }),
            );
          } else {
            res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(a.body ?? '');
          }
        };
        if (a.delayMs) {
          const timer = setTimeout(answer, a.delayMs);
          res.on('close', () => clearTimeout(timer));
        } else answer();
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
