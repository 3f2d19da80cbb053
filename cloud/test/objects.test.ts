import t from 'tap';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { claimDevice, describeJpeg, makeJpeg, presign, presignBody, putObject, startTestCloud, type Jpeg, type TestCloud } from './helpers.js';

const MAX = 64 * 1024;

async function presignUrl(cloud: TestCloud, token: string, jpeg: Jpeg, capturedAt = 1): Promise<string> {
  const p = await presign(cloud, token, presignBody(jpeg, { capturedAt }));
  if (p.body.status !== 'upload') throw new Error(`expected an upload, got ${JSON.stringify(p.body)}`);
  return p.body.url;
}

t.test('PUT refusals keep nothing in the object folder', async (t) => {
  const cloud = await startTestCloud(t, { maxObjectBytes: MAX });
  const dev = await claimDevice(cloud);
  const good = await makeJpeg(1);
  const url = await presignUrl(cloud, dev.token, good);

  const expectRefusal = async (name: string, res: { status: number; body: { code: string } }, status: number, code: string) => {
    t.equal(res.status, status, `${name}: status`);
    t.equal(res.body.code, code, `${name}: code`);
    t.same(await cloud.folder.listFiles(), [], `${name}: nothing kept (temp files included)`);
  };

  const big = Buffer.concat([good.bytes, Buffer.alloc(MAX * 3)]);
  await expectRefusal('Content-Length over the limit', await putObject(cloud, url, big), 413, 'OBJECT_TOO_LARGE');
  await expectRefusal('not image/jpeg', await putObject(cloud, url, good.bytes, { 'content-type': 'image/png' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  await expectRefusal('no content-type', await putObject(cloud, url, good.bytes, {}), 415, 'UNSUPPORTED_MEDIA_TYPE');

  const other = await makeJpeg(2);
  await expectRefusal('other bytes than signed', await putObject(cloud, url, other.bytes), 400, 'CHECKSUM_MISMATCH');
  await expectRefusal('fewer bytes than signed', await putObject(cloud, url, good.bytes.subarray(0, 100)), 400, 'CHECKSUM_MISMATCH');

  const html = await describeJpeg(Buffer.from('<html><body>camera says no</body></html>'));
  const htmlUrl = await presignUrl(cloud, dev.token, html, 2);
  await expectRefusal('an HTML page', await putObject(cloud, htmlUrl, html.bytes), 415, 'NOT_JPEG');

  const cut = await describeJpeg(good.bytes.subarray(0, Math.floor(good.bytes.length / 2)));
  const cutUrl = await presignUrl(cloud, dev.token, cut, 3);
  const truncated = await putObject(cloud, cutUrl, cut.bytes);
  await expectRefusal('truncated JPEG', truncated, 422, 'TRUNCATED_JPEG');
  t.match(truncated.body.message, /end-of-image/);

  // Start and end markers right, nothing decodable between them: only the decode catches it.
  const garbage = await describeJpeg(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(500, 7), Buffer.from([0xff, 0xd9])]));
  const garbageUrl = await presignUrl(cloud, dev.token, garbage, 4);
  const undecodable = await putObject(cloud, garbageUrl, garbage.bytes);
  await expectRefusal('undecodable JPEG', undecodable, 422, 'TRUNCATED_JPEG');
  t.match(undecodable.body.message, /does not decode/);

  // After all that, the real bytes still go in.
  t.equal((await putObject(cloud, url, good.bytes)).status, 200);
  t.equal((await cloud.folder.listFiles()).length, 1);
});

t.test('a chunked body over the limit is stopped while streaming', async (t) => {
  const cloud = await startTestCloud(t, { maxObjectBytes: MAX });
  const dev = await claimDevice(cloud);
  const good = await makeJpeg(1);
  const url = await presignUrl(cloud, dev.token, good);
  async function* body() {
    yield good.bytes;
    for (let i = 0; i < 20; i++) yield Buffer.alloc(16 * 1024);
  }
  let status: number | string;
  try {
    const res = await request(new URL(url, cloud.url), { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body: Readable.from(body()) });
    status = res.statusCode;
    await res.body.dump();
  } catch (err) {
    // The server may cut the connection before the client has read the 413: also a refusal.
    status = (err as { code?: string }).code ?? 'error';
  }
  t.not(status, 200, `refused (${status})`);
  t.same(await cloud.folder.listFiles(), [], 'nothing kept');
});

t.test('signatures: tampered, missing or expired URLs are refused', async (t) => {
  const cloud = await startTestCloud(t, { presignTtlS: 60 });
  const dev = await claimDevice(cloud);
  const good = await makeJpeg(1);
  const url = await presignUrl(cloud, dev.token, good);
  const u = new URL(url, cloud.url);

  const variants: [string, (u: URL) => void][] = [
    ['sig changed', (x) => x.searchParams.set('sig', x.searchParams.get('sig')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')))],
    ['sig missing', (x) => x.searchParams.delete('sig')],
    ['expiry extended', (x) => x.searchParams.set('exp', String(Number(x.searchParams.get('exp')) + 3_600_000))],
    ['size changed', (x) => x.searchParams.set('bytes', String(good.bytes.length + 1))],
    ['key changed', (x) => (x.pathname = x.pathname.replace('.jpg', 'x.jpg'))],
    // %2F survives URL normalisation and is decoded by the router: the key must not escape.
    ['path traversal', (x) => (x.pathname = '/objects/..%2F..%2Furl-signing-key')],
  ];
  for (const [name, tamper] of variants) {
    const x = new URL(u);
    tamper(x);
    const res = await putObject(cloud, x.pathname + x.search, good.bytes);
    t.equal(res.status, 403, name);
    t.equal(res.body.code, 'SIGNATURE_INVALID', name);
  }

  await cloud.clock.advance(61_000);
  const late = await putObject(cloud, url, good.bytes);
  t.equal(late.status, 403);
  t.equal(late.body.code, 'URL_EXPIRED');
  t.same(await cloud.folder.listFiles(), []);

  // A fresh presign for the same frame signs a new URL for the same upload.
  const again = await presignUrl(cloud, dev.token, good);
  t.equal((await putObject(cloud, again, good.bytes)).status, 200);
});

t.test('temp files left by a crash are swept at start-up', async (t) => {
  const cloud = await startTestCloud(t);
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  await cloud.close();
  writeFileSync(join(cloud.objectsDir, '.tmp', 'left-over.part'), 'half a frame');
  const again = await startTestCloud(t, { dataDir: cloud.dataDir });
  t.same(await again.folder.listFiles(), []);
});
