import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { CloudError } from '../errors.js';
import { checkJpegFile, checkJpegHead } from './jpeg-check.js';
import type { ExpectedObject, ObjectReader, ObjectStat, ObjectStore, PresignedPut } from './types.js';
import type { UrlSigner } from './url-signer.js';

/** Where presigned PUTs go; the cloud serves them itself (routes/objects.ts). */
export const OBJECTS_PATH = '/objects/';
export const JPEG_CONTENT_TYPE = 'image/jpeg';
/** Uploads in flight are written here, inside the objects folder so the final rename is atomic. */
const TEMP_DIR = '.tmp';
// Key segments start with a letter, digit, "_" or "-": no ".", "..", or the hidden temp dir.
const KEY_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const MAX_KEY_LENGTH = 512;

export interface FolderStoreOptions {
  root: string;
  signer: UrlSigner;
  maxObjectBytes: number;
  presignTtlMs: number;
}

/** A presigned PUT as it arrives: the key from the path, the rest from the query and headers. */
export interface IncomingPut {
  key: string;
  query: Record<string, unknown>;
  contentLength: number | undefined;
  contentType: string | undefined;
}

export function isObjectKey(key: string): boolean {
  return key.length <= MAX_KEY_LENGTH && KEY_RE.test(key);
}

/**
 * The embedded object store: a folder on disk. Presigned URLs are HMAC-signed by this cloud and
 * their PUTs land here; only fully verified bytes are ever renamed into place.
 */
export class FolderStore implements ObjectStore {
  readonly #o: FolderStoreOptions;

  private constructor(o: FolderStoreOptions) {
    this.#o = o;
  }

  /** Opens the folder, removing temp files a crash left behind (they were never verified). */
  static async open(o: FolderStoreOptions): Promise<FolderStore> {
    const tmp = join(o.root, TEMP_DIR);
    await mkdir(tmp, { recursive: true });
    for (const name of await readdir(tmp)) await unlink(join(tmp, name)).catch(() => undefined);
    return new FolderStore(o);
  }

  async presignPut(key: string, expected: ExpectedObject, now: number): Promise<PresignedPut> {
    if (!isObjectKey(key)) throw new Error(`invalid object key ${JSON.stringify(key)}`);
    const exp = now + this.#o.presignTtlMs;
    const sig = this.#o.signer.sign({ method: 'PUT', key, exp, bytes: expected.bytes, sha256: expected.sha256 });
    const q = new URLSearchParams({ bytes: String(expected.bytes), sha256: expected.sha256, exp: String(exp), sig });
    return { method: 'PUT', url: `${OBJECTS_PATH}${key}?${q}`, headers: { 'content-type': JPEG_CONTENT_TYPE }, expiresAt: exp };
  }

  /**
   * The checks that need no body, in the order a client can fix them: signature, expiry, size,
   * media type. Run before a byte of the body is read. Returns what the URL was signed for.
   */
  authorizePut(put: IncomingPut, now: number): ExpectedObject {
    const q = put.query;
    const exp = Number(q.exp);
    const bytes = Number(q.bytes);
    const sha256 = typeof q.sha256 === 'string' ? q.sha256 : '';
    const sig = typeof q.sig === 'string' ? q.sig : '';
    const wellFormed = isObjectKey(put.key) && Number.isSafeInteger(exp) && Number.isSafeInteger(bytes) && bytes >= 0 && SHA256_RE.test(sha256) && sig !== '';
    if (!wellFormed || !this.#o.signer.verify({ method: 'PUT', key: put.key, exp, bytes, sha256 }, sig)) {
      throw new CloudError('SIGNATURE_INVALID', 'the object URL signature is missing or does not match');
    }
    if (exp <= now) throw new CloudError('URL_EXPIRED', 'the presigned URL has expired; presign again');
    if (put.contentLength !== undefined && put.contentLength > this.#o.maxObjectBytes) {
      throw new CloudError('OBJECT_TOO_LARGE', `the body is ${put.contentLength} bytes; the limit is ${this.#o.maxObjectBytes}`);
    }
    const mediaType = put.contentType?.split(';')[0]?.trim().toLowerCase();
    if (mediaType !== JPEG_CONTENT_TYPE) {
      throw new CloudError('UNSUPPORTED_MEDIA_TYPE', `content-type must be ${JPEG_CONTENT_TYPE}, not ${put.contentType ?? 'missing'}`);
    }
    return { bytes, sha256 };
  }

  /**
   * Streams the body to a temp file while counting and hashing, then verifies it (JPEG magic,
   * size and SHA-256 as signed, end marker, a decode) and only then fsyncs and renames it into
   * place. Any failure deletes the temp file: nothing half-written or unverified is kept.
   * Putting the same key again replaces identical bytes, so retries are harmless.
   */
  async receivePut(key: string, expected: ExpectedObject, body: Readable): Promise<ObjectStat> {
    const tmp = join(this.#o.root, TEMP_DIR, `${randomBytes(12).toString('hex')}.part`);
    const final = this.#path(key);
    let kept = false;
    try {
      const received = await this.#writeTemp(tmp, body);
      if (received.bytes !== expected.bytes || received.sha256 !== expected.sha256) {
        throw new CloudError(
          'CHECKSUM_MISMATCH',
          `received ${received.bytes} bytes with sha256 ${received.sha256}; the URL was signed for ${expected.bytes} bytes with sha256 ${expected.sha256}`,
        );
      }
      await checkJpegFile(tmp, received.bytes);
      await mkdir(dirname(final), { recursive: true });
      await rename(tmp, final);
      kept = true;
      await fsyncDir(dirname(final));
      return received;
    } finally {
      if (!kept) await unlink(tmp).catch(() => undefined);
    }
  }

  async #writeTemp(tmp: string, body: Readable): Promise<ObjectStat> {
    // flush: the file is fsynced before it closes, so the rename publishes durable bytes.
    const ws = createWriteStream(tmp, { flags: 'wx', mode: 0o640, flush: true });
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      // destroyOnReturn: false — on a refusal the request stays open so the error response
      // can still be sent on it.
      for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        if (bytes === 0) checkJpegHead(chunk);
        bytes += chunk.length;
        if (bytes > this.#o.maxObjectBytes) {
          throw new CloudError('OBJECT_TOO_LARGE', `the body is over the ${this.#o.maxObjectBytes}-byte limit`);
        }
        hash.update(chunk);
        if (!ws.write(chunk)) await once(ws, 'drain');
      }
      ws.end();
      await finished(ws);
    } catch (err) {
      ws.destroy();
      await finished(ws).catch(() => undefined);
      throw err;
    }
    return { bytes, sha256: hash.digest('hex') };
  }

  async stat(key: string): Promise<ObjectStat | null> {
    const path = this.#path(key);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        hash.update(chunk);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return { bytes, sha256: hash.digest('hex') };
  }

  async openRead(key: string, opts: { start?: number; end?: number } = {}): Promise<ObjectReader | null> {
    const path = this.#path(key);
    try {
      const fh = await open(path, 'r');
      const { size } = await fh.stat();
      return { stream: fh.createReadStream({ start: opts.start ?? 0, ...(opts.end === undefined ? {} : { end: opts.end }) }), bytes: size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const final = this.#path(key);
    await mkdir(dirname(final), { recursive: true });
    try {
      await rename(localPath, final);
    } catch (err) {
      // Another file system (a data dir split over mounts): copy, then drop the original.
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await copyFile(localPath, final);
      await unlink(localPath);
    }
    await fsyncDir(dirname(final));
  }

  async delete(key: string): Promise<void> {
    await unlink(this.#path(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /** Every file the store holds, temp files included, relative to its root (tests, ops). */
  async listFiles(): Promise<string[]> {
    const entries = await readdir(this.#o.root, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(this.#o.root.length + 1)).sort();
  }

  #path(key: string): string {
    if (!isObjectKey(key)) throw new Error(`invalid object key ${JSON.stringify(key)}`);
    return join(this.#o.root, key);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
