import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { CloudError } from '../errors.js';

export interface ReceivedBundle {
  path: string;
  bytes: number;
  sha256: string;
}

/**
 * Uploaded bundles are streamed here first, counted and hashed on the way, so they can be
 * checked (`rauc info` needs a file) before the object store keeps them.
 */
export class BundleIntake {
  readonly #dir: string;
  readonly #maxBytes: number;

  private constructor(dir: string, maxBytes: number) {
    this.#dir = dir;
    this.#maxBytes = maxBytes;
  }

  /** Creates the folder and removes what a crash left in it (never checked, never kept). */
  static async open(dir: string, maxBytes: number): Promise<BundleIntake> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(dir)) await unlink(join(dir, name)).catch(() => undefined);
    return new BundleIntake(dir, maxBytes);
  }

  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** Writes the body to a new temp file; on any failure the file is gone. Empty bodies are refused. */
  async receive(body: Readable): Promise<ReceivedBundle> {
    const path = join(this.#dir, `${randomBytes(12).toString('hex')}.raucb`);
    const ws = createWriteStream(path, { flags: 'wx', mode: 0o600, flush: true });
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      // destroyOnReturn: false — on a refusal the request stays open for the error response.
      for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > this.#maxBytes) throw new CloudError('OBJECT_TOO_LARGE', `the bundle is over the ${this.#maxBytes}-byte limit`);
        hash.update(chunk);
        if (!ws.write(chunk)) await once(ws, 'drain');
      }
      if (bytes === 0) throw new CloudError('BAD_REQUEST', 'the request body is empty; the bundle was expected');
      ws.end();
      await finished(ws);
    } catch (err) {
      ws.destroy();
      await finished(ws).catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw err;
    }
    return { path, bytes, sha256: hash.digest('hex') };
  }

  async discard(b: ReceivedBundle): Promise<void> {
    await unlink(b.path).catch(() => undefined);
  }
}
