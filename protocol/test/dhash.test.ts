import t from 'tap';
import { dhash, hammingDistance, isDhash, DHASH_HEX_LENGTH, DHASH_WIDTH, DHASH_HEIGHT } from '../src/dhash.js';

function gradient(dir: 1 | -1): Uint8Array {
  const px = new Uint8Array(DHASH_WIDTH * DHASH_HEIGHT);
  for (let y = 0; y < DHASH_HEIGHT; y++)
    for (let x = 0; x < DHASH_WIDTH; x++) px[y * DHASH_WIDTH + x] = dir > 0 ? x * 3 : 255 - x * 3;
  return px;
}

t.test('dhash of a falling gradient sets every bit, a rising one none', async (t) => {
  const falling = dhash(gradient(-1));
  const rising = dhash(gradient(1));
  t.equal(falling.length, DHASH_HEX_LENGTH);
  t.match(falling, /^f+$/);
  t.match(rising, /^0+$/);
  t.equal(hammingDistance(falling, rising), 4096);
  t.equal(hammingDistance(falling, falling), 0);
  t.ok(isDhash(falling));
  t.notOk(isDhash('xyz'));
});

t.test('bit order: the first pixel pair is the most significant bit of the first byte', async (t) => {
  const px = new Uint8Array(3 * 1);
  px[0] = 9; px[1] = 1; px[2] = 5;
  t.equal(dhash(px, 3, 1), '80');
});

t.test('a one-pixel change moves the hash by at most two bits', async (t) => {
  const a = gradient(1);
  const b = Uint8Array.from(a);
  b[5 * DHASH_WIDTH + 10] = 255;
  const d = hammingDistance(dhash(a), dhash(b));
  t.ok(d >= 1 && d <= 2, `distance ${d}`);
});

t.test('wrong input sizes are errors', async (t) => {
  t.throws(() => dhash(new Uint8Array(10)), RangeError);
  t.throws(() => hammingDistance('ab', 'abcd'), RangeError);
});
