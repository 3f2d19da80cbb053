// The device's HTTP client against a plain loopback server that answers what an S3-compatible
// bucket answers to a repeated conditional PUT.
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudClient, CloudError } from '../src/cloud/cloud-client.js';

t.test('a conditional PUT answered 412 (the object is there) counts as stored; any other 412 is an error', async (t) => {
  const seen: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(req.headers['if-none-match'] as string | undefined);
      res.writeHead(412, { 'content-type': 'application/xml' }).end('<Error><Code>PreconditionFailed</Code></Error>');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new CloudClient({ baseUrl: base, token: () => undefined, timeoutMs: 5000 });
  t.teardown(() => client.close());
  const body = Buffer.from('jpeg bytes');

  await client.putObject(`${base}/bucket/frame.jpg`, { 'content-type': 'image/jpeg', 'If-None-Match': '*' }, body);
  t.same(seen, ['*'], 'sent with its condition; the 412 resolves');

  const err = await client.putObject(`${base}/bucket/frame.jpg`, { 'content-type': 'image/jpeg' }, body).catch((e: unknown) => e);
  t.ok(err instanceof CloudError && err.status === 412, 'without a condition, 412 is a failure');
});
