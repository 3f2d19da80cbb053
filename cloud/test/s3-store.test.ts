// S3Store against a real S3-compatible server (s3rver, which verifies SigV4) over real HTTP.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { access, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { request } from 'undici';
import { CloudClient, type CloudError as AgentCloudError } from '../../agent/src/cloud/cloud-client.js';
import { S3Store, type S3StoreOptions } from '../src/objects/s3-store.js';
import { startS3, type TestS3 } from '../../test/helpers/s3.js';
import { tmpDir } from '../../test/helpers/tmp.js';

const MAX = 256 * 1024;
const TTL_MS = 60_000;

/** Bytes to upload, and what a presign commits to (an ExpectedObject). */
interface Body {
  data: Buffer;
  bytes: number;
  sha256: string;
}

function body(n: number): Body {
  const data = randomBytes(n);
  return { data, bytes: n, sha256: createHash('sha256').update(data).digest('hex') };
}

function options(s3: TestS3, o: Partial<S3StoreOptions> = {}): S3StoreOptions {
  return {
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    region: s3.region,
    urlStyle: 'path',
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    maxObjectBytes: MAX,
    presignTtlMs: TTL_MS,
    ...o,
  };
}

async function openStore(t: Test, o: Partial<S3StoreOptions> = {}): Promise<{ s3: TestS3; store: S3Store }> {
  const s3 = await startS3(t);
  const store = await S3Store.open(options(s3, o));
  t.teardown(() => store.close());
  return { s3, store };
}

/** A raw HTTP call, as a device makes it; the S3 error code from the XML body, if any. */
async function send(url: string, method: 'PUT' | 'GET', headers: Record<string, string>, payload?: Buffer): Promise<{ status: number; code: string | undefined; body: Buffer }> {
  const res = await request(url, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
  const buf = Buffer.from(await res.body.arrayBuffer());
  const code = /<Code>([^<]+)<\/Code>/.exec(buf.toString('utf8'))?.[1];
  return { status: res.statusCode, code, body: buf };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

function tamper(url: string): string {
  const u = new URL(url);
  const sig = u.searchParams.get('X-Amz-Signature') ?? '';
  u.searchParams.set('X-Amz-Signature', (sig[0] === '0' ? '1' : '0') + sig.slice(1));
  return u.toString();
}

t.test('presign, PUT with exactly the returned headers, then stat matches', async (t) => {
  const { store } = await openStore(t);
  const obj = body(5000);
  const now = Date.now();
  const put = await store.presignPut('frames/d1/c1/1-compressed-u1.jpg', obj, now);
  t.equal(put.method, 'PUT');
  t.match(put.url, /^http:\/\/127\.0\.0\.1:\d+\/vigil-test\/frames\/d1\/c1\/1-compressed-u1\.jpg\?/, 'absolute, path-style');
  t.equal(put.expiresAt, now + TTL_MS);
  t.same(put.headers, {
    'content-type': 'image/jpeg',
    'content-length': '5000',
    'x-amz-checksum-sha256': Buffer.from(obj.sha256, 'hex').toString('base64'),
    'if-none-match': '*',
  });
  t.equal(new URL(put.url).searchParams.get('X-Amz-SignedHeaders'), 'content-length;content-type;host;if-none-match;x-amz-checksum-sha256', 'every header is signed');
  t.equal(new URL(put.url).searchParams.get('X-Amz-Expires'), '60');

  const res = await send(put.url, 'PUT', put.headers, obj.data);
  t.equal(res.status, 200, res.body.toString());
  t.same(await store.stat('frames/d1/c1/1-compressed-u1.jpg'), { bytes: 5000, sha256: obj.sha256 });
});

t.test('a PUT that departs from the signed headers is refused and stores nothing', async (t) => {
  const { store } = await openStore(t);
  const key = 'frames/d1/c1/2-full-u2.jpg';
  const obj = body(4000);
  const put = await store.presignPut(key, obj, Date.now());
  const longer = Buffer.concat([obj.data, Buffer.from('x')]);
  const other = body(4000);

  const cases: [string, Record<string, string>, Buffer][] = [
    ['another length', { ...put.headers, 'content-length': String(longer.length) }, longer],
    ['a shorter body', { ...put.headers, 'content-length': '100' }, obj.data.subarray(0, 100)],
    ['another content type', { ...put.headers, 'content-type': 'image/png' }, obj.data],
    ['no content type', Object.fromEntries(Object.entries(put.headers).filter(([k]) => k !== 'content-type')), obj.data],
    ['the checksum of other bytes', { ...put.headers, 'x-amz-checksum-sha256': Buffer.from(other.sha256, 'hex').toString('base64') }, other.data],
    ['If-None-Match left out', Object.fromEntries(Object.entries(put.headers).filter(([k]) => k !== 'if-none-match')), obj.data],
  ];
  for (const [name, headers, payload] of cases) {
    const res = await send(put.url, 'PUT', headers, payload);
    t.equal(res.status, 403, `${name}: 403`);
    t.equal(res.code, 'SignatureDoesNotMatch', `${name}: the signature does not cover it`);
    t.equal(await store.stat(key), null, `${name}: nothing stored`);
  }

  const forged = await send(tamper(put.url), 'PUT', put.headers, obj.data);
  t.equal(forged.status, 403, 'a tampered signature: 403');
  t.equal(forged.code, 'SignatureDoesNotMatch');
  t.equal(await store.stat(key), null, 'a tampered signature: nothing stored');

  // After all that, the signed bytes still go in.
  t.equal((await send(put.url, 'PUT', put.headers, obj.data)).status, 200);
  t.same(await store.stat(key), { bytes: 4000, sha256: obj.sha256 });
});

t.test('s3rver: other bytes of the signed length under the signed checksum header are kept; stat shows them', async (t) => {
  // S3 and MinIO check the body against x-amz-checksum-sha256 (400 BadDigest); s3rver does not
  // look at it. What holds on such a server is `complete`, which compares stat() with what was
  // presigned: stat must report the bytes really stored, never the checksum that was claimed.
  const { store } = await openStore(t);
  const key = 'frames/d1/c1/3-full-u3.jpg';
  const obj = body(3000);
  const other = body(3000);
  const put = await store.presignPut(key, obj, Date.now());
  const res = await send(put.url, 'PUT', put.headers, other.data);
  t.equal(res.status, 200, 's3rver accepts it (a checking server answers 400 BadDigest)');
  const st = await store.stat(key);
  t.same(st, { bytes: 3000, sha256: other.sha256 }, 'stat hashes the stored bytes');
  t.not(st?.sha256, obj.sha256, 'so complete refuses the upload');
});

t.test('s3rver ignores If-None-Match on PUT: a second PUT is accepted, so the signed header is harmless there', async (t) => {
  // On S3, MinIO and Ceph the second PUT gets 412 PreconditionFailed.
  const { store } = await openStore(t);
  const key = 'frames/d1/c1/4-full-u4.jpg';
  const obj = body(2000);
  const put = await store.presignPut(key, obj, Date.now());
  t.equal((await send(put.url, 'PUT', put.headers, obj.data)).status, 200, 'first PUT');
  t.equal((await send(put.url, 'PUT', put.headers, obj.data)).status, 200, 'second PUT (S3: 412)');
  t.same(await store.stat(key), { bytes: 2000, sha256: obj.sha256 });
});

t.test('without conditionalPut no If-None-Match is signed', async (t) => {
  const { store } = await openStore(t, { conditionalPut: false });
  const obj = body(100);
  const put = await store.presignPut('frames/x/y.jpg', obj, Date.now());
  t.notOk('if-none-match' in put.headers);
  t.equal(new URL(put.url).searchParams.get('X-Amz-SignedHeaders'), 'content-length;content-type;host;x-amz-checksum-sha256');
  t.equal((await send(put.url, 'PUT', put.headers, obj.data)).status, 200);
  t.same(await store.stat('frames/x/y.jpg'), { bytes: 100, sha256: obj.sha256 });
});

t.test('an expired PUT URL is refused', async (t) => {
  const { store } = await openStore(t);
  const obj = body(1000);
  const put = await store.presignPut('frames/old.jpg', obj, Date.now() - TTL_MS - 5_000);
  t.ok(put.expiresAt < Date.now());
  const res = await send(put.url, 'PUT', put.headers, obj.data);
  t.equal(res.status, 403);
  t.equal(res.code, 'AccessDenied');
  t.equal(await store.stat('frames/old.jpg'), null);
});

t.test('presignPut refuses what it cannot sign', async (t) => {
  const { store } = await openStore(t);
  await t.rejects(store.presignPut('frames/big.jpg', { bytes: MAX + 1, sha256: 'a'.repeat(64) }, Date.now()), { code: 'OBJECT_TOO_LARGE' });
  await t.rejects(store.presignPut('../escape.jpg', body(10), Date.now()), /invalid object key/);
  await t.rejects(store.presignPut('frames/a.jpg', { bytes: 10, sha256: 'XYZ' }, Date.now()), /invalid expected object/);
});

t.test('openRead: whole, ranged, from an offset; missing is null', async (t) => {
  const { store } = await openStore(t);
  const obj = body(10_000);
  const put = await store.presignPut('frames/r.jpg', obj, Date.now());
  t.equal((await send(put.url, 'PUT', put.headers, obj.data)).status, 200);

  const whole = await store.openRead('frames/r.jpg');
  t.ok(whole);
  t.equal(whole?.bytes, 10_000);
  t.ok(whole && (await readAll(whole.stream)).equals(obj.data), 'whole object');

  const part = await store.openRead('frames/r.jpg', { start: 100, end: 199 });
  t.equal(part?.bytes, 10_000, 'size of the whole object, not of the range');
  t.ok(part && (await readAll(part.stream)).equals(obj.data.subarray(100, 200)), 'bytes 100-199');

  const tail = await store.openRead('frames/r.jpg', { start: 9_990 });
  t.equal(tail?.bytes, 10_000);
  t.ok(tail && (await readAll(tail.stream)).equals(obj.data.subarray(9_990)), 'from 9990 to the end');

  t.equal(await store.openRead('frames/none.jpg'), null);
  t.equal(await store.openRead('frames/none.jpg', { start: 0, end: 9 }), null);
});

t.test('putFile uploads a local file and removes it', async (t) => {
  const { store } = await openStore(t);
  const dir = await tmpDir(t);
  const local = join(dir, 'bundle.raucb');
  // Larger than one socket buffer and than maxObjectBytes (which is for device uploads only).
  const obj = body(3 * 1024 * 1024 + 17);
  await writeFile(local, obj.data);
  await store.putFile('firmware/rel1/bundle.raucb', local);
  await t.rejects(access(local), { code: 'ENOENT' }, 'the local file is gone');
  t.same(await store.stat('firmware/rel1/bundle.raucb'), { bytes: obj.bytes, sha256: obj.sha256 });
  const r = await store.openRead('firmware/rel1/bundle.raucb');
  t.ok(r && (await readAll(r.stream)).equals(obj.data), 'bytes read back');
});

t.test('putFile of a missing local file fails and stores nothing', async (t) => {
  const { store } = await openStore(t);
  const dir = await tmpDir(t);
  await t.rejects(store.putFile('firmware/none.raucb', join(dir, 'nope')), { code: 'ENOENT' });
  t.equal(await store.stat('firmware/none.raucb'), null);
});

t.test('delete: twice is fine; the object is gone', async (t) => {
  const { store } = await openStore(t);
  const obj = body(500);
  const put = await store.presignPut('frames/d.jpg', obj, Date.now());
  t.equal((await send(put.url, 'PUT', put.headers, obj.data)).status, 200);
  t.ok(await store.stat('frames/d.jpg'));
  await store.delete('frames/d.jpg');
  t.equal(await store.stat('frames/d.jpg'), null);
  t.equal(await store.openRead('frames/d.jpg'), null);
  await store.delete('frames/d.jpg');
  await store.delete('frames/never.jpg');
  t.equal(await store.stat('frames/never.jpg'), null, 'stat of a missing object is null');
});

t.test('presignGet: a download straight from the bucket, refused once expired or tampered', async (t) => {
  const { store } = await openStore(t);
  const obj = body(7000);
  const put = await store.presignPut('frames/g.jpg', obj, Date.now());
  t.equal((await send(put.url, 'PUT', put.headers, obj.data)).status, 200);

  const now = Date.now();
  const get = await store.presignGet('frames/g.jpg', now);
  t.equal(get.expiresAt, now + TTL_MS);
  t.equal(new URL(get.url).searchParams.get('X-Amz-SignedHeaders'), 'host');
  const res = await send(get.url, 'GET', {});
  t.equal(res.status, 200);
  t.ok(res.body.equals(obj.data), 'the stored bytes');

  const ranged = await send(get.url, 'GET', { range: 'bytes=10-19' });
  t.equal(ranged.status, 206, 'ranges work on the presigned URL');
  t.ok(ranged.body.equals(obj.data.subarray(10, 20)));

  const forged = await send(tamper(get.url), 'GET', {});
  t.equal(forged.status, 403);
  t.equal(forged.code, 'SignatureDoesNotMatch');

  const old = await store.presignGet('frames/g.jpg', Date.now() - TTL_MS - 5_000);
  const expired = await send(old.url, 'GET', {});
  t.equal(expired.status, 403);
  t.equal(expired.code, 'AccessDenied');
});

t.test('open() says which bucket at which endpoint it cannot reach, and no secret', async (t) => {
  const s3 = await startS3(t);
  const missing = S3Store.open(options(s3, { bucket: 'no-such-bucket' }));
  await t.rejects(missing, new RegExp(`S3 bucket "no-such-bucket" at ${s3.endpoint.replace(/\./g, '\\.')} is not reachable: no such bucket`));

  const secret = 'wrong-secret-0123456789';
  const err = await S3Store.open(options(s3, { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: secret } })).then(
    () => null,
    (e: unknown) => e as Error,
  );
  t.match(err?.message, /S3 bucket "vigil-test" at .* is not reachable: access denied/);
  t.notOk(err?.message.includes(secret), 'the secret is not in the message');

  const dead = await S3Store.open(options(s3, { endpoint: 'http://someone:pass-in-url-42@127.0.0.1:9' })).then(
    () => null,
    (e: unknown) => e as Error,
  );
  t.match(dead?.message, /^S3 bucket "vigil-test" at http:\/\/127\.0\.0\.1:9 is not reachable: /, 'nothing listens there');
  t.notOk(dead?.message.includes('pass-in-url-42'), 'nor a password given in the endpoint URL');
});

t.test("stat takes the server's full-object SHA-256 when it has one, and hashes the bytes otherwise", async (t) => {
  // s3rver keeps no checksums, so this meets a minimal HTTP server that answers HEAD and GET the
  // way S3 does for an object PUT with x-amz-checksum-sha256 (FULL_OBJECT) and for a multipart
  // upload (COMPOSITE: a checksum of part checksums, "...-N", which says nothing about the bytes).
  const single = body(1234);
  const multi = body(4321);
  const gets: string[] = [];
  const server = createServer((req, res) => {
    const path = req.url?.split('?')[0] ?? '';
    const obj = path === '/b/frames/single.jpg' ? single : path === '/b/frames/multi.jpg' ? multi : null;
    if (path === '/b' || path === '/b/') return res.writeHead(200).end();
    if (!obj) return res.writeHead(404, { 'content-type': 'application/xml' }).end(req.method === 'HEAD' ? undefined : '<Error><Code>NoSuchKey</Code></Error>');
    const checksum =
      obj === single
        ? { 'x-amz-checksum-sha256': Buffer.from(single.sha256, 'hex').toString('base64'), 'x-amz-checksum-type': 'FULL_OBJECT' }
        : { 'x-amz-checksum-sha256': `${createHash('sha256').update('part checksums').digest('base64')}-3`, 'x-amz-checksum-type': 'COMPOSITE' };
    res.writeHead(200, { 'content-length': String(obj.bytes), 'content-type': 'image/jpeg', etag: '"e"', ...checksum });
    if (req.method === 'HEAD') return res.end();
    gets.push(path);
    res.end(obj.data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const store = await S3Store.open({ bucket: 'b', endpoint, region: 'us-east-1', urlStyle: 'path', credentials: { accessKeyId: 'k', secretAccessKey: 's' }, maxObjectBytes: MAX, presignTtlMs: TTL_MS });
  t.teardown(() => store.close());

  t.same(await store.stat('frames/single.jpg'), { bytes: 1234, sha256: single.sha256 });
  t.same(gets, [], 'the full-object checksum is used without reading the object');
  t.same(await store.stat('frames/multi.jpg'), { bytes: 4321, sha256: multi.sha256 });
  t.same(gets, ['/b/frames/multi.jpg'], 'a composite checksum is not taken for the bytes: they are read and hashed');
  t.equal(await store.stat('frames/none.jpg'), null);
});

t.test("the agent's own client PUTs to the presigned URL with the returned headers", async (t) => {
  const { store } = await openStore(t);
  const obj = body(6000);
  const put = await store.presignPut('frames/agent.jpg', obj, Date.now());
  // The URL is absolute, so the client's base URL (the cloud) plays no part.
  const client = new CloudClient({ baseUrl: 'http://127.0.0.1:9', token: () => 'device-token' });
  t.teardown(() => client.close());
  await client.putObject(put.url, put.headers, obj.data);
  t.same(await store.stat('frames/agent.jpg'), { bytes: obj.bytes, sha256: obj.sha256 });

  // Other bytes under the URL: refused, and classified for the uploader as "presign again".
  const err = await client.putObject(put.url, put.headers, Buffer.concat([obj.data, Buffer.from('x')])).then(
    () => null,
    (e: unknown) => e as AgentCloudError,
  );
  t.equal(err?.status, 403);
  t.equal(err?.kind, 'retry');
  t.same(await store.stat('frames/agent.jpg'), { bytes: obj.bytes, sha256: obj.sha256 }, 'the stored object is untouched');
});
