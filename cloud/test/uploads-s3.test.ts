// The device's upload path with objects in an S3-compatible bucket: a real s3rver (it checks
// SigV4 signatures) on loopback, the real cloud in-process on the suite's database.
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import t, { type Test } from 'tap';
import { testDatabaseUrl } from '../../test/helpers/postgres.js';
import { startS3, type TestS3 } from '../../test/helpers/s3.js';
import { ConfigError } from '../src/errors.js';
import { startCloud, type RunningCloud } from '../src/main.js';
import { claimDevice, http, makeJpeg, presign, presignBody, putObject, tempDir, type Jpeg } from './helpers.js';

async function s3Cloud(t: Test): Promise<{ cloud: RunningCloud; s3: TestS3 }> {
  const s3 = await startS3(t);
  const dataDir = tempDir(t);
  const databaseUrl = await testDatabaseUrl(t, dataDir);
  const cloud = await startCloud(
    {
      port: 0,
      logLevel: 'silent',
      dataDir,
      ...(databaseUrl ? { databaseUrl } : {}),
      s3Bucket: s3.bucket,
      s3Endpoint: s3.endpoint,
      s3Region: s3.region,
      s3AccessKeyId: s3.accessKeyId,
      s3SecretAccessKey: s3.secretAccessKey,
    },
    { detector: null },
  );
  t.teardown(() => cloud.close());
  return { cloud, s3 };
}

/** A presign that must hand out an upload (the frame is new). */
async function presignUpload(cloud: RunningCloud, token: string, jpeg: Jpeg) {
  const p = await presign(cloud, token, presignBody(jpeg));
  if (p.status !== 200 || p.body.status !== 'upload') throw new Error(`presign: ${p.status} ${p.raw.toString()}`);
  return p.body;
}

t.test('presign → PUT to the bucket → complete; the image reads back through the cloud', async (t) => {
  const { cloud, s3 } = await s3Cloud(t);
  t.equal(cloud.folder, undefined, 'no object folder: the bucket holds the objects');
  const { token } = await claimDevice(cloud);
  const jpeg = await makeJpeg(7);
  const p = { body: await presignUpload(cloud, token, jpeg) };
  t.ok(p.body.url.startsWith(`${s3.endpoint}/${s3.bucket}/`), 'the URL is the bucket, not the cloud');
  t.equal((await putObject(cloud, p.body.url, jpeg.bytes, p.body.headers)).status, 200);
  const c = await http<{ frameId: string; created: boolean }>(cloud.url, 'POST', '/v1/uploads/complete', { token, json: { uploadId: p.body.uploadId } });
  t.equal(c.status, 200);
  const img = await http(cloud.url, 'GET', `/admin/v1/frames/${c.body.frameId}/image`, { token: cloud.adminToken });
  t.equal(img.status, 200);
  t.ok(img.raw.equals(jpeg.bytes), 'the same bytes');
});

t.test('other bytes under a presigned URL are refused at complete and deleted; the right bytes then go through', async (t) => {
  const { cloud, s3 } = await s3Cloud(t);
  const { token } = await claimDevice(cloud);
  const jpeg = await makeJpeg(8);
  const p = { body: await presignUpload(cloud, token, jpeg) };
  // Same length, other bytes: s3rver does not check the body against the signed checksum
  // (S3 would answer 400 BadDigest), so the cloud's own check at complete must catch it.
  const other = Buffer.from(jpeg.bytes);
  other[other.length >> 1]! ^= 0xff;
  t.equal((await putObject(cloud, p.body.url, other, p.body.headers)).status, 200, 's3rver stores them');
  const bad = await http(cloud.url, 'POST', '/v1/uploads/complete', { token, json: { uploadId: p.body.uploadId } });
  t.equal(bad.body.code, 'OBJECT_MISMATCH');
  const key = p.body.url.split('?')[0]!;
  const objectKey = decodeURIComponent(new URL(key).pathname.slice(`/${s3.bucket}/`.length));
  const client = new S3Client({ region: s3.region, endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  t.teardown(() => client.destroy());
  const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: objectKey })).catch((e: unknown) => e as { name: string });
  t.equal((head as { name?: string }).name, 'NotFound', 'the wrong bytes are gone from the bucket');
  t.equal((await http(cloud.url, 'PUT', p.body.url, { body: jpeg.bytes, headers: p.body.headers })).status, 200, 'the key is free for the right bytes');
  const again = { body: await presignUpload(cloud, token, jpeg) };
  t.equal(again.body.url.split('?')[0], key, 'the device is handed the same upload again');
  const ok = await http<{ frameId: string }>(cloud.url, 'POST', '/v1/uploads/complete', { token, json: { uploadId: again.body.uploadId } });
  t.equal(ok.status, 200, 'and it completes');
});

t.test('a bucket that is not there stops start-up with an error naming it', async (t) => {
  const s3 = await startS3(t);
  const err = await startCloud({
    port: 0,
    logLevel: 'silent',
    dataDir: tempDir(t),
    s3Bucket: 'no-such-bucket',
    s3Endpoint: s3.endpoint,
    s3AccessKeyId: s3.accessKeyId,
    s3SecretAccessKey: s3.secretAccessKey,
  }).catch((e: unknown) => e as Error);
  t.ok(err instanceof ConfigError, 'a configuration error');
  t.match(err, { message: /S3 bucket "no-such-bucket" at http:\/\/127\.0\.0\.1:\d+ is not reachable: no such bucket/ });
  t.notMatch((err as Error).message, s3.secretAccessKey, 'no secret in the message');
});
