import sharp from 'sharp';

/** A real JPEG of the given size: noise, so sizes are realistic and every call differs. */
export async function makeJpeg(width = 320, height = 240, quality = 80): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (Math.random() * 256) | 0;
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality }).toBuffer();
}
