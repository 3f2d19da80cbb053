// Cheap structural checks on JPEG bytes: start-of-image magic and end-of-image marker.
// They catch "not a JPEG" (an HTML error page from a camera) and "truncated" (a write cut
// short); a full decode is left to whoever needs the pixels.

export type JpegProblem = 'empty' | 'not_jpeg' | 'truncated';

export function jpegProblem(buf: Uint8Array): JpegProblem | null {
  if (buf.length === 0) return 'empty';
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8 || buf[2] !== 0xff) return 'not_jpeg';
  // Some encoders pad after EOI; allow a little trailing slack.
  const tail = Math.max(2, buf.length - 16);
  for (let i = buf.length - 2; i >= tail - 2 && i >= 0; i--) {
    if (buf[i] === 0xff && buf[i + 1] === 0xd9) return null;
  }
  return 'truncated';
}

export function hasJpegMagic(buf: Uint8Array): boolean {
  return buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
}
