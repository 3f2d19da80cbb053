// The one Range form a resumable download needs: `bytes=N-` (and `bytes=N-M`). Anything else
// (several ranges, suffix ranges, other units) is ignored and the whole file is sent, which
// RFC 9110 allows.

export type RangeAnswer = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

const RANGE_RE = /^bytes=(\d{1,15})-(\d{0,15})$/;

export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'full' };
  const m = RANGE_RE.exec(header.trim());
  if (!m) return { kind: 'full' };
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}
