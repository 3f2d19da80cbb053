// A real webhook receiver on 127.0.0.1: records every request and answers from a script.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Tap {
  teardown(fn: () => unknown): void;
}

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  raw: Buffer;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read bodies loosely
  json: any;
}

export type ScriptedAnswer = number | { status: number; headers?: Record<string, string> };

export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  /** Answers for the next requests, in order; when empty, 200. */
  readonly script: ScriptedAnswer[] = [];
  #server: Server | undefined;
  #port = 0;

  static async start(t: Tap, port = 0): Promise<WebhookReceiver> {
    const r = new WebhookReceiver();
    await r.listen(port);
    t.teardown(() => r.close());
    return r;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/hooks/vigil`;
  }

  /** (Again) on the given port: a receiver that was down comes back. */
  async listen(port = this.#port): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        let json: unknown = null;
        try {
          json = JSON.parse(raw.toString('utf8'));
        } catch {
          // recorded raw
        }
        this.received.push({ headers: req.headers, raw, json });
        const a = this.script.shift() ?? 200;
        const { status, headers } = typeof a === 'number' ? { status: a, headers: {} } : a;
        res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(status < 300 ? 'ok' : 'no');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** The notifications received, by event, as parsed bodies. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read bodies loosely
  events(event?: string): any[] {
    return this.received.map((r) => r.json).filter((j) => j && (event === undefined || j.event === event));
  }
}

/** What a receiver does to trust a notification: HMAC-SHA256 of the raw body with the shared secret. */
export function verifySignature(w: ReceivedWebhook, secret: string): boolean {
  const header = String(w.headers['x-vigil-signature'] ?? '');
  const expected = `sha256=${createHmac('sha256', secret).update(w.raw).digest('hex')}`;
  return header.length === expected.length && timingSafeEqual(Buffer.from(header), Buffer.from(expected));
}
