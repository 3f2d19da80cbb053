import t from 'tap';
import { jpegProblem, hasJpegMagic } from '../src/jpeg.js';

const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 0xff, 0xd9]);

t.test('jpegProblem classifies bytes', async (t) => {
  const cases: [string, Buffer, string | null][] = [
    ['complete', jpeg, null],
    ['padded after EOI', Buffer.concat([jpeg, Buffer.alloc(4)]), null],
    ['empty', Buffer.alloc(0), 'empty'],
    ['html', Buffer.from('<html>401</html>'), 'not_jpeg'],
    ['truncated', jpeg.subarray(0, 7), 'truncated'],
  ];
  for (const [name, buf, want] of cases) t.equal(jpegProblem(buf), want, name);
  t.ok(hasJpegMagic(jpeg));
  t.notOk(hasJpegMagic(Buffer.from('GIF89a')));
});
