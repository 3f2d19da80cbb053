import type { Readable } from 'node:stream';

// Object storage for frame bytes. The cloud never proxies uploads through its API: it hands
// the device a presigned PUT URL, the device sends the bytes there, and `complete` checks
// them with stat(). The embedded folder store serves its own presigned URLs; an S3-compatible
// store would return S3 presigned URLs with the same shape.

export interface PresignedPut {
  method: 'PUT';
  /** Absolute, or relative to the cloud's base URL. */
  url: string;
  /** Headers the client must send with the PUT. */
  headers: Record<string, string>;
  /** Unix epoch milliseconds. */
  expiresAt: number;
}

/** What a presigned PUT commits the client to. */
export interface ExpectedObject {
  bytes: number;
  sha256: string;
}

export interface ObjectStat {
  bytes: number;
  /** Lower-case hex SHA-256 of the stored bytes. */
  sha256: string;
}

export interface ObjectReader {
  stream: Readable;
  /** The whole object's size (not what is left after `start`). */
  bytes: number;
}

export interface ObjectStore {
  presignPut(key: string, expected: ExpectedObject, now: number): Promise<PresignedPut>;
  /** null when there is no such object. */
  stat(key: string): Promise<ObjectStat | null>;
  /** null when there is no such object. `start`, `end` (inclusive): the bytes to read (ranged downloads). */
  openRead(key: string, opts?: { start?: number; end?: number }): Promise<ObjectReader | null>;
  /**
   * Moves a finished local file in as the object (large server-side uploads such as firmware
   * bundles, which are streamed to disk and checked before they are kept).
   */
  putFile(key: string, localPath: string): Promise<void>;
  /** Deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Lets go of connections, if the store holds any. */
  close?(): Promise<void>;
}
