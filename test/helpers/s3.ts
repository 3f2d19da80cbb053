// An S3-compatible server for tests: @20minutes/s3rver in-process on a loopback port, over a
// temp dir. This fork verifies SigV4 signatures (the original s3rver accepts any signature),
// so presigned-URL tests mean something against it.
import { createRequire } from 'node:module';
import { tmpDir, type Teardown } from './tmp.js';

/** s3rver's one built-in account (lib/models/account.js). */
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';
const REGION = 'us-east-1';
const BUCKET = 'vigil-test';

// The package ships no types; this is the part of its API used here (lib/s3rver.js).
interface S3rverOptions {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  /** Bucket names are taken from the path only: requests go to 127.0.0.1, never to a bucket host name. */
  vhostBuckets: boolean;
  configureBuckets: { name: string }[];
}
interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (o: S3rverOptions) => S3rverInstance;

export interface TestS3 {
  /** http://127.0.0.1:port, for a path-style client. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Where s3rver keeps buckets and objects. */
  dir: string;
}

/** A running s3rver with one empty bucket, stopped and its folder removed at teardown. */
export async function startS3(t: Teardown): Promise<TestS3> {
  const dir = await tmpDir(t, 'vigil-s3-');
  const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as S3rverClass;
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory: dir, silent: true, vhostBuckets: false, configureBuckets: [{ name: BUCKET }] });
  const { port } = await server.run();
  // Registered after tmpDir's removal, so it runs first (tap runs teardowns in reverse order).
  t.teardown(() => server.close());
  return { endpoint: `http://127.0.0.1:${port}`, bucket: BUCKET, region: REGION, accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY, dir };
}
