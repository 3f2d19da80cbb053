// Difference hash over a grayscale thumbnail: one bit per horizontally adjacent pixel pair
// (1 when the left pixel is brighter). The agent feeds it a 65×64 thumbnail from ffmpeg,
// giving 64×64 = 4096 bits; the cloud compares hashes by Hamming distance to dedupe frames.

export const DHASH_WIDTH = 65;
export const DHASH_HEIGHT = 64;
export const DHASH_BITS = (DHASH_WIDTH - 1) * DHASH_HEIGHT;
export const DHASH_HEX_LENGTH = DHASH_BITS / 4;

export function dhash(gray: Uint8Array, width = DHASH_WIDTH, height = DHASH_HEIGHT): string {
  if (width < 2 || height < 1) throw new RangeError(`dhash: thumbnail ${width}x${height} is too small`);
  if (gray.length !== width * height) {
    throw new RangeError(`dhash: expected ${width * height} grayscale bytes, got ${gray.length}`);
  }
  const bits = (width - 1) * height;
  const out = new Uint8Array(Math.ceil(bits / 8));
  let bit = 0;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width - 1; x++, bit++) {
      if (gray[row + x]! > gray[row + x + 1]!) out[bit >> 3]! |= 0x80 >> (bit & 7);
    }
  }
  return Buffer.from(out).toString('hex');
}

const HEX_RE = /^[0-9a-f]*$/;

export function isDhash(s: unknown, hexLength = DHASH_HEX_LENGTH): s is string {
  return typeof s === 'string' && s.length === hexLength && HEX_RE.test(s);
}

/** Number of differing bits between two hashes of the same length. */
export function hammingDistance(a: string, b: string): number {
  if (a.length !== b.length) throw new RangeError(`hammingDistance: lengths differ (${a.length} vs ${b.length})`);
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  let d = 0;
  for (let i = 0; i < x.length; i++) {
    let v = x[i]! ^ y[i]!;
    while (v) {
      v &= v - 1;
      d++;
    }
  }
  return d;
}
