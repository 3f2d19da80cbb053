// A TCP proxy on loopback in front of a server, which drops chosen connections mid-response:
// a network that fails half-way through a download. Each connection is forwarded byte for
// byte; when `cut` says so for a connection (from its first request line), the proxy closes
// both sides once `afterBytes` bytes of the response have passed.
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Teardown } from './tmp.js';

export interface CutRule {
  /** The first line of the request ("GET /v1/... HTTP/1.1"); true: cut this connection. */
  match: (requestLine: string) => boolean;
  afterBytes: number;
  /** How many connections to cut; later matches pass untouched. */
  times: number;
}

export interface CutProxy {
  port: number;
  /** Connections cut so far, with the request line and the bytes that got through. */
  cuts: { requestLine: string; bytes: number }[];
  /** Request lines seen, in order (with the Range header, if any). */
  requests: { requestLine: string; range: string | null }[];
  setRule(rule: CutRule | null): void;
}

export async function startCutProxy(t: Teardown, targetPort: number): Promise<CutProxy> {
  let rule: CutRule | null = null;
  const cuts: CutProxy['cuts'] = [];
  const requests: CutProxy['requests'] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    // Every request on the (keep-alive) connection: its head, then its body (Content-Length)
    let pending = Buffer.alloc(0);
    let bodyLeft = 0;
    let cutAfter: number | null = null;
    let sent = 0;
    let requestLine = '';
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (bodyLeft > 0) {
          const skip = Math.min(bodyLeft, pending.length);
          pending = pending.subarray(skip);
          bodyLeft -= skip;
          if (bodyLeft > 0) return;
        }
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.subarray(0, end).toString('latin1');
        pending = pending.subarray(end + 4);
        bodyLeft = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0);
        requestLine = head.slice(0, head.indexOf('\r\n'));
        const range = /^range:\s*(.+)$/im.exec(head)?.[1]?.trim() ?? null;
        requests.push({ requestLine, range });
        // One request at a time on a connection (no pipelining): what comes back next is its answer
        if (rule && rule.times > 0 && rule.match(requestLine)) {
          rule.times--;
          cutAfter = rule.afterBytes;
          sent = 0;
        }
      }
    });
    let dropped = false;
    upstream.on('data', (chunk: Buffer) => {
      if (dropped) return;
      if (cutAfter === null) {
        client.write(chunk);
        return;
      }
      const room = cutAfter - sent;
      if (room > 0) client.write(chunk.subarray(0, room));
      sent += Math.min(room, chunk.length);
      if (sent >= cutAfter) {
        cuts.push({ requestLine, bytes: sent });
        // Let the bytes written so far reach the client, then drop the connection
        dropped = true;
        client.end(() => close());
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as AddressInfo).port,
    cuts,
    requests,
    setRule: (r) => {
      rule = r;
    },
  };
}
