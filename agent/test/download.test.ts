// The resumable bundle download against a real HTTP server on loopback that speaks Range and
// If-Range, can cut a transfer short, and can change the file under the download.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudClient } from '../src/cloud/cloud-client.js';
import { silentLogger } from '../src/lib/logger.js';
import { download } from '../src/update/download.js';

interface Bundle {
  data: Buffer;
  etag: string;
}

async function bundleServer(t: Test, first: Bundle) {
  const state = { bundle: first, cutAfter: Infinity, requests: [] as { range: string | undefined; ifRange: string | undefined; auth: string | undefined }[] };
  const srv = createServer((req: IncomingMessage, res) => {
    const { data, etag } = state.bundle;
    const ifRange = req.headers['if-range'];
    state.requests.push({ range: req.headers.range, ifRange: Array.isArray(ifRange) ? ifRange[0] : ifRange, auth: req.headers.authorization });
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const honour = m && (!req.headers['if-range'] || req.headers['if-range'] === etag);
    if (m && honour) {
      start = Number(m[1]);
      if (start >= data.length) return void res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
      res.writeHead(206, { etag, 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
    } else {
      res.writeHead(200, { etag, 'content-length': data.length });
    }
    const body = data.subarray(start);
    if (body.length > state.cutAfter) {
      // The line drops mid-way: part of the body, then (once the client has read it) the
      // connection is gone
      res.write(body.subarray(0, state.cutAfter), () => setTimeout(() => res.socket?.destroy(), 100));
      state.cutAfter = Infinity;
      return;
    }
    res.end(body);
  }).listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const client = new CloudClient({ baseUrl: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, token: () => 'device-token' });
  t.teardown(() => client.close());
  return { state, client };
}

const make = (bytes: number, etag: string): Bundle => ({ data: randomBytes(bytes), etag });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);

t.test('a download cut mid-way resumes from where it stopped, with Range and If-Range', async (t) => {
  const bundle = make(3 * 1024 * 1024, '"v2"');
  const { state, client } = await bundleServer(t, bundle);
  const dest = join(t.testdir({}), 'update.raucb');
  const req = { url: '/v1/firmware/bundle', dest, bytes: bundle.data.length, sha256: sha(bundle.data), maxBytes: 10 * 1024 * 1024 };
  state.cutAfter = 1024 * 1024;
  t.equal(await code(download(client, req, silentLogger(), 0)), 'DOWNLOAD_FAILED', 'the dropped line is a retryable failure');
  t.notOk(existsSync(dest), 'nothing half-downloaded under the final name');
  const r = await download(client, req, silentLogger(), 0);
  t.ok(r.resumedFrom >= 64 * 1024 && r.resumedFrom <= 1024 * 1024, `resumed from byte ${r.resumedFrom}`);
  t.same(state.requests.at(-1), { range: `bytes=${r.resumedFrom}-`, ifRange: '"v2"', auth: 'Bearer device-token' }, 'asked for the rest of the same file');
  t.ok(readFileSync(dest).equals(bundle.data), 'the whole bundle, byte for byte');
  t.notOk(existsSync(`${dest}.part`), 'no part file left');
  // Asked again (the install was cut by a power failure): the file it has is used as it is
  const asked = state.requests.length;
  t.same(await download(client, req, silentLogger(), 0), { path: dest, resumedFrom: bundle.data.length }, 'already there');
  t.equal(state.requests.length, asked, 'not fetched again');
  const other = { ...req, sha256: sha(Buffer.from('another bundle')) };
  t.equal(await code(download(client, other, silentLogger(), 0)), 'DOWNLOAD_MISMATCH', 'a file that does not match is fetched again, and checked');
});

t.test('a bundle that changed under the download starts over; a wrong hash is thrown away', async (t) => {
  const old = make(512 * 1024, '"old"');
  const { state, client } = await bundleServer(t, old);
  const dest = join(t.testdir({}), 'update.raucb');
  const fresh = make(512 * 1024, '"new"');
  const req = { url: '/b', dest, bytes: fresh.data.length, sha256: sha(fresh.data), maxBytes: 1024 * 1024 };
  state.cutAfter = 100 * 1024;
  t.equal(await code(download(client, req, silentLogger(), 0)), 'DOWNLOAD_FAILED');
  state.bundle = fresh;
  const r = await download(client, req, silentLogger(), 0);
  t.equal(state.requests.at(-1)?.ifRange, '"old"', 'If-Range named the old file...');
  t.ok(readFileSync(dest).equals(fresh.data), '...the server sent the new one whole, and it was taken from the start');
  t.ok(r.resumedFrom > 0, 'there had been a part');

  const other = join(t.testdir({}), 'x.raucb');
  t.equal(await code(download(client, { ...req, dest: other, sha256: 'f'.repeat(64) }, silentLogger(), 0)), 'DOWNLOAD_MISMATCH', 'a hash that does not match');
  t.notOk(existsSync(other) || existsSync(`${other}.part`), 'nothing kept of it');
});

t.test('over the budget or the disk: refused before a byte is fetched; a 404 is refused', async (t) => {
  const bundle = make(64 * 1024, '"a"');
  const { state, client } = await bundleServer(t, bundle);
  const dest = join(t.testdir({}), 'u.raucb');
  t.equal(await code(download(client, { url: '/b', dest, bytes: bundle.data.length, sha256: sha(bundle.data), maxBytes: 1024 }, silentLogger(), 0)), 'DOWNLOAD_NO_SPACE');
  t.equal(await code(download(client, { url: '/b', dest, bytes: bundle.data.length, sha256: sha(bundle.data), maxBytes: 1e6 }, silentLogger(), Number.MAX_SAFE_INTEGER)), 'DOWNLOAD_NO_SPACE', 'the disk must keep room for captures');
  t.equal(state.requests.length, 0, 'no request was made');
});
