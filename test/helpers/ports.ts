// Loopback ports for tests.
import { createServer } from 'node:net';

/** A loopback port nothing listens on (bound, then closed): a dead peer, or a port to listen on next. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
