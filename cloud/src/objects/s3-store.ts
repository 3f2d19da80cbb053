import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat as statFile, unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { CloudError } from '../errors.js';
import { isObjectKey, JPEG_CONTENT_TYPE } from './folder-store.js';
import type { ExpectedObject, ObjectReader, ObjectStat, ObjectStore, PresignedPut } from './types.js';

/** How long opening a connection to the object store may take. */
const S3_CONNECT_TIMEOUT_MS = 10_000;
/** How long a request may go without a byte moving (not the whole transfer: bundles are large). */
const S3_IDLE_TIMEOUT_MS = 120_000;
/** SigV4 presigned URLs live at most a week. */
const MAX_PRESIGN_TTL_S = 7 * 24 * 3600;
const SHA256_RE = /^[0-9a-f]{64}$/;
/** S3's limit for one PutObject; larger needs a multipart upload. */
const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;

export interface S3StoreOptions {
  bucket: string;
  /** An S3-compatible server (MinIO, Ceph, Garage, ...); unset = AWS, by region. */
  endpoint?: string;
  region: string;
  /** 'path': http://endpoint/bucket/key (most S3-compatible servers); 'virtual-host': http://bucket.endpoint/key (AWS). */
  urlStyle: 'path' | 'virtual-host';
  /** Unset: the AWS SDK's own chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  maxObjectBytes: number;
  presignTtlMs: number;
  /**
   * Sign `If-None-Match: *` into presigned PUTs, so an object, once written, cannot be replaced
   * through its URL (servers that honour it answer a second PUT 412; servers that ignore it, such
   * as s3rver, accept it as a plain PUT). Default true. A client must then take a 412 on a
   * retried PUT as "already stored" and go on to `complete`, which checks the bytes.
   */
  conditionalPut?: boolean;
}

export interface PresignedGet {
  method: 'GET';
  url: string;
  /** Unix epoch milliseconds. */
  expiresAt: number;
}

/**
 * Frame bytes and firmware bundles in an S3-compatible bucket. Devices PUT straight to the
 * bucket with a presigned URL whose signature covers the content type, the exact length and the
 * SHA-256 checksum header, so the URL cannot carry other bytes to a server that checks
 * checksums; `complete` still compares stat() with what was presigned, which catches servers
 * that do not.
 */
export class S3Store implements ObjectStore {
  readonly #o: S3StoreOptions;
  readonly #client: S3Client;

  private constructor(o: S3StoreOptions, client: S3Client) {
    this.#o = o;
    this.#client = client;
  }

  /**
   * Builds the client and checks the bucket is there and these credentials reach it. The
   * credentials need s3:ListBucket besides Get/Put/DeleteObject: HeadBucket asks for it, and
   * without it S3 answers a HEAD of a missing object 403 instead of 404.
   */
  static async open(o: S3StoreOptions): Promise<S3Store> {
    const client = new S3Client({
      region: o.region,
      ...(o.endpoint === undefined ? {} : { endpoint: o.endpoint }),
      forcePathStyle: o.urlStyle === 'path',
      ...(o.credentials === undefined ? {} : { credentials: o.credentials }),
      // Checksums only where the operation demands one: the SDK's default CRC32 would be
      // signed into presigned URLs (for an empty body) and sent as aws-chunked trailers, which
      // several S3-compatible servers do not understand. The checksums that matter are set
      // explicitly below.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: S3_CONNECT_TIMEOUT_MS, requestTimeout: S3_IDLE_TIMEOUT_MS },
    });
    const store = new S3Store(o, client);
    try {
      await client.send(store.#headBucket());
    } catch (err) {
      client.destroy();
      const where = o.endpoint === undefined ? `AWS ${o.region}` : withoutUserInfo(o.endpoint);
      const status = statusOf(err);
      const why = status === 404 ? 'no such bucket' : status === 403 ? 'access denied (check the credentials and the bucket policy)' : (err as Error).message;
      throw new Error(`S3 bucket ${JSON.stringify(o.bucket)} at ${where} is not reachable: ${why}`, { cause: err });
    }
    return store;
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  async presignPut(key: string, expected: ExpectedObject, now: number): Promise<PresignedPut> {
    checkKey(key);
    if (!Number.isSafeInteger(expected.bytes) || expected.bytes < 0 || !SHA256_RE.test(expected.sha256)) {
      throw new Error(`invalid expected object: ${String(expected.bytes)} bytes, sha256 ${JSON.stringify(expected.sha256)}`);
    }
    if (expected.bytes > this.#o.maxObjectBytes) {
      throw new CloudError('OBJECT_TOO_LARGE', `the object is ${expected.bytes} bytes; the limit is ${this.#o.maxObjectBytes}`);
    }
    const headers: Record<string, string> = {
      'content-type': JPEG_CONTENT_TYPE,
      'content-length': String(expected.bytes),
      'x-amz-checksum-sha256': Buffer.from(expected.sha256, 'hex').toString('base64'),
    };
    const conditional = this.#o.conditionalPut ?? true;
    if (conditional) headers['if-none-match'] = '*';
    const command = new PutObjectCommand({
      Bucket: this.#o.bucket,
      Key: key,
      ContentType: JPEG_CONTENT_TYPE,
      ContentLength: expected.bytes,
      ChecksumSHA256: headers['x-amz-checksum-sha256'],
      ...(conditional ? { IfNoneMatch: '*' } : {}),
    });
    const { url, expiresAt } = await this.#presign(command, now, headers);
    return { method: 'PUT', url, headers, expiresAt };
  }

  /** A presigned GET (downloads straight from the bucket); no headers to send. */
  async presignGet(key: string, now: number): Promise<PresignedGet> {
    checkKey(key);
    const { url, expiresAt } = await this.#presign(new GetObjectCommand({ Bucket: this.#o.bucket, Key: key }), now, {});
    return { method: 'GET', url, expiresAt };
  }

  /**
   * Signs `command` as of `now` for presignTtlMs (whole seconds: what SigV4 can say). Every
   * header in `headers` is signed and stays a header (not hoisted into the query), so a client
   * must send exactly these values; the URL's X-Amz-SignedHeaders is checked against them.
   */
  async #presign(command: PutObjectCommand | GetObjectCommand, now: number, headers: Record<string, string>): Promise<{ url: string; expiresAt: number }> {
    const ttlS = Math.min(MAX_PRESIGN_TTL_S, Math.max(1, Math.floor(this.#o.presignTtlMs / 1000)));
    const names = Object.keys(headers);
    const url = await getSignedUrl(this.#client, command, {
      expiresIn: ttlS,
      signingDate: new Date(now),
      signableHeaders: new Set(names),
      unhoistableHeaders: new Set(names),
    });
    const signed = new URL(url).searchParams.get('X-Amz-SignedHeaders')?.split(';').sort().join(';');
    const want = ['host', ...names].sort().join(';');
    // A client sends only `headers`: anything else the SDK signed would make every PUT fail.
    if (signed !== want) throw new Error(`presigned URL signs ${signed ?? 'no headers'}, expected ${want}`);
    return { url, expiresAt: now + ttlS * 1000 };
  }

  /**
   * Size and SHA-256 of the stored object. The server's full-object SHA-256 checksum when it
   * keeps one (S3, MinIO, recent Ceph, for objects PUT with x-amz-checksum-sha256); otherwise
   * the object is read and hashed as it streams.
   */
  async stat(key: string): Promise<ObjectStat | null> {
    checkKey(key);
    let head;
    try {
      head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#o.bucket, Key: key, ChecksumMode: 'ENABLED' }));
    } catch (err) {
      // A HEAD has no body, so a missing bucket looks the same; open() checked the bucket.
      if (statusOf(err) === 404) return null;
      throw err;
    }
    const bytes = head.ContentLength;
    if (bytes === undefined) throw new Error(`S3 HeadObject of ${key} gave no content length`);
    const sum = head.ChecksumSHA256;
    // A multipart upload's checksum is a checksum of part checksums ("...-N"), not of the bytes.
    if (sum !== undefined && !sum.includes('-') && head.ChecksumType !== 'COMPOSITE') {
      const hex = Buffer.from(sum, 'base64').toString('hex');
      if (SHA256_RE.test(hex)) return { bytes, sha256: hex };
    }
    const obj = await this.openRead(key);
    if (!obj) return null;
    const hash = createHash('sha256');
    let read = 0;
    for await (const chunk of obj.stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      read += chunk.length;
    }
    // Replaced between the HEAD and the GET: report what was hashed.
    return { bytes: read, sha256: hash.digest('hex') };
  }

  async openRead(key: string, opts: { start?: number; end?: number } = {}): Promise<ObjectReader | null> {
    checkKey(key);
    const ranged = opts.start !== undefined || opts.end !== undefined;
    const range = ranged ? `bytes=${opts.start ?? 0}-${opts.end ?? ''}` : undefined;
    let out: GetObjectCommandOutput;
    try {
      out = await this.#client.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key: key, ...(range ? { Range: range } : {}) }));
    } catch (err) {
      if (nameOf(err) === 'NoSuchKey') return null;
      throw err;
    }
    const total = out.ContentRange ? Number(/\/(\d+)$/.exec(out.ContentRange)?.[1]) : out.ContentLength;
    if (total === undefined || !Number.isSafeInteger(total)) {
      throw new Error(`S3 GetObject of ${key} gave no object size (Content-Range ${out.ContentRange ?? 'missing'})`);
    }
    if (!(out.Body instanceof Readable)) throw new Error(`S3 GetObject of ${key} gave no readable body`);
    return { stream: out.Body, bytes: total };
  }

  /**
   * Uploads a finished local file as the object in one PUT (up to S3's 5 GiB single-PUT limit),
   * with its SHA-256 so the server can check what arrived, then removes the local file, as the
   * folder store's move does.
   */
  async putFile(key: string, localPath: string): Promise<void> {
    checkKey(key);
    const { size } = await statFile(localPath);
    if (size > MAX_SINGLE_PUT_BYTES) throw new Error(`${localPath} is ${size} bytes; one S3 PUT takes at most ${MAX_SINGLE_PUT_BYTES}`);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(localPath) as AsyncIterable<Buffer>) hash.update(chunk);
    const body = createReadStream(localPath);
    try {
      await this.#client.send(
        new PutObjectCommand({ Bucket: this.#o.bucket, Key: key, Body: body, ContentLength: size, ChecksumSHA256: hash.digest('base64') }),
      );
    } finally {
      body.destroy();
    }
    await unlink(localPath);
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key: key }));
    } catch (err) {
      // S3 answers 204 for a missing key; some compatible servers say NoSuchKey.
      if (nameOf(err) !== 'NoSuchKey') throw err;
    }
  }

  /**
   * HeadBucket, path-style without the trailing slash the SDK adds ("/bucket/" becomes
   * "/bucket"). S3 treats both as the bucket; some compatible servers (s3rver) sign only the
   * bare form and would refuse the check with SignatureDoesNotMatch.
   */
  #headBucket(): HeadBucketCommand {
    const command = new HeadBucketCommand({ Bucket: this.#o.bucket });
    if (this.#o.urlStyle === 'path') {
      const bare = `/${this.#o.bucket}`;
      command.middlewareStack.add(
        (next) => async (args) => {
          const req = args.request as { path?: unknown };
          if (req.path === `${bare}/`) req.path = bare;
          return next(args);
        },
        { step: 'build', name: 'vigilBareBucketPath' },
      );
    }
    return command;
  }
}

function checkKey(key: string): void {
  if (!isObjectKey(key)) throw new Error(`invalid object key ${JSON.stringify(key)}`);
}

/** The endpoint for messages, without any user:password it was given with. */
function withoutUserInfo(endpoint: string): string {
  const u = new URL(endpoint);
  u.username = '';
  u.password = '';
  return u.toString().replace(/\/$/, '');
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function nameOf(err: unknown): string | undefined {
  return (err as { name?: string } | null)?.name;
}
