import { hasJpegMagic, jpegProblem } from '@vigil/protocol';
import { open } from 'node:fs/promises';
import sharp from 'sharp';
import { CloudError } from '../errors.js';

/** Bytes jpegProblem() looks at: the SOI magic at the start, the EOI search window at the end. */
const JPEG_HEAD_BYTES = 4;
const JPEG_TAIL_BYTES = 18;
/** Decode at thumbnail size: libjpeg still reads every entropy-coded byte, so truncation shows. */
const DECODE_CHECK_PX = 64;

/** Early check on the first bytes of a stream, so a non-JPEG is refused before it is stored. */
export function checkJpegHead(head: Buffer): void {
  if (head.length >= 3 && !hasJpegMagic(head)) throw new CloudError('NOT_JPEG', 'the uploaded bytes are not a JPEG (no start-of-image marker)');
}

/**
 * Full check of a received JPEG file: start and end markers (cheap, read from the file's two
 * ends), then a real decode that fails on truncation.
 */
export async function checkJpegFile(path: string, bytes: number): Promise<void> {
  const problem = jpegProblem(await readEnds(path, bytes));
  if (problem === 'empty' || problem === 'not_jpeg') throw new CloudError('NOT_JPEG', 'the uploaded bytes are not a JPEG');
  if (problem === 'truncated') throw new CloudError('TRUNCATED_JPEG', 'the JPEG is truncated (no end-of-image marker)');
  try {
    await sharp(path, { failOn: 'truncated' }).resize(DECODE_CHECK_PX, DECODE_CHECK_PX, { fit: 'inside' }).raw().toBuffer();
  } catch (err) {
    throw new CloudError('TRUNCATED_JPEG', `the JPEG does not decode: ${(err as Error).message}`, { cause: err });
  }
}

/** The file's first and last bytes joined (the whole file when it is small). */
async function readEnds(path: string, bytes: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    if (bytes <= JPEG_HEAD_BYTES + JPEG_TAIL_BYTES) {
      const all = Buffer.alloc(bytes);
      await fh.read(all, 0, bytes, 0);
      return all;
    }
    const buf = Buffer.alloc(JPEG_HEAD_BYTES + JPEG_TAIL_BYTES);
    await fh.read(buf, 0, JPEG_HEAD_BYTES, 0);
    await fh.read(buf, JPEG_HEAD_BYTES, JPEG_TAIL_BYTES, bytes - JPEG_TAIL_BYTES);
    return buf;
  } finally {
    await fh.close();
  }
}
