// A resumable download of a firmware bundle to /data: the bytes so far live in `<dest>.part`
// (with the ETag they came under in `<dest>.part.json`), so a dropped connection, a reboot or a
// power cut costs only what was in flight. The next try asks for the rest with Range and
// If-Range: a server that still has the same file answers 206 and the download carries on; one
// whose file changed answers 200 and it starts over. The whole file must then match the size
// and SHA-256 the release promised before it is renamed into place; nothing is installed from
// a file that did not.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CloudError, type CloudClient } from '../cloud/cloud-client.js';
import { VigilError, errorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/** Download error codes → retryable. */
export const DOWNLOAD_ERROR_RETRYABLE = {
  /** The connection failed or dropped: try again later, from where it stopped. */
  DOWNLOAD_FAILED: true,
  /** The server answered something other than the file (4xx). */
  DOWNLOAD_REFUSED: false,
  /** Larger than the budget, or than the disk can take. */
  DOWNLOAD_NO_SPACE: true,
  /** The whole file is not what the release promised: deleted, start over. */
  DOWNLOAD_MISMATCH: true,
} as const satisfies Record<string, boolean>;
export type DownloadErrorCode = keyof typeof DOWNLOAD_ERROR_RETRYABLE;

function downloadError(code: DownloadErrorCode, message: string, cause?: unknown): VigilError {
  return new VigilError(code, message, { retryable: DOWNLOAD_ERROR_RETRYABLE[code], cause });
}

/** Free space left on /data after the download, for the queue and the database. */
export const DOWNLOAD_DISK_RESERVE_BYTES = 256 * 1024 * 1024;

export interface DownloadRequest {
  /** Absolute, or relative to the cloud. */
  url: string;
  dest: string;
  bytes: number;
  sha256: string;
  /** Largest download allowed (the update's disk budget). */
  maxBytes: number;
  signal?: AbortSignal;
}

export interface DownloadResult {
  path: string;
  /** Bytes that were already there from an earlier try. */
  resumedFrom: number;
}

interface PartInfo {
  url: string;
  etag: string | null;
  sha256: string;
}

export async function download(client: CloudClient, req: DownloadRequest, log: Logger, reserveBytes = DOWNLOAD_DISK_RESERVE_BYTES): Promise<DownloadResult> {
  const part = `${req.dest}.part`;
  const infoFile = `${part}.json`;
  if (req.bytes > req.maxBytes) throw downloadError('DOWNLOAD_NO_SPACE', `the bundle is ${req.bytes} bytes, over the ${req.maxBytes}-byte budget`);
  // Downloaded before (an install cut by a power failure): used again once it checks out
  if ((await stat(req.dest).catch(() => null))?.size === req.bytes && (await sha256File(req.dest)) === req.sha256) {
    log.info({ bytes: req.bytes }, 'bundle already downloaded and checked');
    return { path: req.dest, resumedFrom: req.bytes };
  }

  // What an earlier try left, if it was for this same file
  let have = 0;
  let info: PartInfo | null = null;
  try {
    info = JSON.parse(await readFile(infoFile, 'utf8')) as PartInfo;
    if (info.url !== req.url || info.sha256 !== req.sha256) info = null;
    else have = (await stat(part)).size;
  } catch {
    info = null;
  }
  if (!info || have > req.bytes) {
    await rm(part, { force: true });
    have = 0;
    info = null;
  }
  const fs = await statfs(dirname(req.dest));
  const free = fs.bavail * fs.bsize;
  if (free - (req.bytes - have) < reserveBytes) {
    throw downloadError('DOWNLOAD_NO_SPACE', `${req.bytes - have} bytes to fetch, ${free} free, ${reserveBytes} kept for captures`);
  }

  const resumedFrom = have;
  if (have < req.bytes) {
    const headers: Record<string, string> = {};
    if (have > 0) {
      headers.range = `bytes=${have}-`;
      if (info?.etag) headers['if-range'] = info.etag;
    }
    let res: Awaited<ReturnType<CloudClient['getObject']>>;
    try {
      res = await client.getObject(req.url, headers, req.signal);
    } catch (err) {
      if (err instanceof CloudError && err.status === 416) {
        // Our part does not fit the server's file: the next try starts over
        await rm(part, { force: true });
        throw downloadError('DOWNLOAD_FAILED', `GET ${req.url}: the server has no bytes from ${have} on; starting over next time`, err);
      }
      if (err instanceof CloudError && err.kind === 'permanent') throw downloadError('DOWNLOAD_REFUSED', `GET ${req.url}: HTTP ${err.status}`, err);
      throw downloadError('DOWNLOAD_FAILED', `GET ${req.url}: ${(err as Error).message}`, err);
    }
    {
      const range = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
      if (res.statusCode === 206 && Number(range?.[1]) !== have) {
        res.body.destroy();
        await rm(part, { force: true });
        throw downloadError('DOWNLOAD_FAILED', `asked for bytes from ${have}, the server sent "${String(res.headers['content-range'])}"; starting over next time`);
      }
      const restart = res.statusCode !== 206;
      if (restart && have > 0) log.info({ had: have }, 'the server sent the whole file: the bundle changed or no resume; starting over');
      if (restart) have = 0;
      const etagHeader = res.headers.etag;
      const etag = (Array.isArray(etagHeader) ? etagHeader[0] : etagHeader) ?? null;
      await writeFile(infoFile, JSON.stringify({ url: req.url, etag, sha256: req.sha256 } satisfies PartInfo));
      const fh = await open(part, restart ? 'w' : 'a');
      try {
        for await (const chunk of res.body) {
          have += chunk.length;
          if (have > req.bytes) {
            res.body.destroy();
            throw downloadError('DOWNLOAD_MISMATCH', `the server sent more than the ${req.bytes} bytes promised`);
          }
          await fh.write(chunk);
        }
        await fh.sync();
      } catch (err) {
        if (err instanceof VigilError) throw err;
        const code = errorCode(err);
        if (code === 'ENOSPC') throw downloadError('DOWNLOAD_NO_SPACE', 'the disk filled up during the download', err);
        throw downloadError('DOWNLOAD_FAILED', `download of ${req.url} stopped at ${have} of ${req.bytes} bytes: ${(err as Error).message}`, err);
      } finally {
        await fh.close();
      }
    }
  }

  const size = (await stat(part)).size;
  const sha = size === req.bytes ? await sha256File(part) : null;
  if (size !== req.bytes || sha !== req.sha256) {
    await rm(part, { force: true });
    await rm(infoFile, { force: true });
    throw downloadError('DOWNLOAD_MISMATCH', `downloaded ${size} bytes${sha ? ` with SHA-256 ${sha}` : ''}; the release says ${req.bytes} bytes, ${req.sha256}`);
  }
  await rename(part, req.dest);
  await rm(infoFile, { force: true });
  log.info({ bytes: size, resumedFrom }, 'bundle downloaded and checked');
  return { path: req.dest, resumedFrom };
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
