import sharp from 'sharp';
import { dhash, DHASH_HEIGHT, DHASH_WIDTH } from '@vigil/protocol';

/**
 * dHash of a JPEG already on disk. Only used when the capture's own hash is gone (a spool file
 * found at start-up without its queue row); captures hash ffmpeg's thumbnail directly.
 */
export async function dhashOfJpeg(path: string): Promise<string> {
  const { data, info } = await sharp(path, { failOn: 'truncated' })
    .resize(DHASH_WIDTH, DHASH_HEIGHT, { fit: 'fill' })
    .grayscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 1) throw new Error(`expected 1 channel, got ${info.channels}`);
  return dhash(data);
}
