import t from 'tap';
import { LazyDetector } from '../src/detect/lazy-detector.js';
import { DetectorError, type ObjectDetector } from '../src/detect/object-detector.js';

// The cloud's detector starts on first use (a cloud that never gets a frame never loads the
// model), a start that fails is tried again on the next call, and close() stops what started.
// The detector behind it is a test double here; object-detector.test.ts runs the real one.

function double(): ObjectDetector & { closed: number } {
  const d = {
    closed: 0,
    detect: async () => [{ label: 'person', score: 0.9, box: [1, 2, 3, 4] as [number, number, number, number] }],
    close: async () => {
      d.closed++;
    },
  };
  return d;
}

t.test('starts on the first detection, once', async (t) => {
  let starts = 0;
  const inner = double();
  const lazy = new LazyDetector(async () => {
    starts++;
    return inner;
  });
  t.equal(starts, 0, 'nothing started by construction');
  const [a, b] = await Promise.all([lazy.detect(Buffer.from('x')), lazy.detect(Buffer.from('y'))]);
  t.equal(starts, 1, 'two calls at once share one start');
  t.same(a, b);
  t.equal(a[0]?.label, 'person');
  await lazy.close();
  t.equal(inner.closed, 1, 'close() stops it');
  await t.rejects(lazy.detect(Buffer.from('z')), { code: 'DETECTOR_CLOSED' });
});

t.test('a failed start is tried again on the next call', async (t) => {
  let starts = 0;
  const lazy = new LazyDetector(async () => {
    starts++;
    if (starts === 1) throw new DetectorError('DETECTOR_FAILED', 'the model did not load');
    return double();
  });
  await t.rejects(lazy.detect(Buffer.from('x')), { code: 'DETECTOR_FAILED' });
  t.equal((await lazy.detect(Buffer.from('x'))).length, 1, 'the second call starts it');
  t.equal(starts, 2);
  await lazy.close();
});

t.test('closing one never started is fine', async (t) => {
  let starts = 0;
  const lazy = new LazyDetector(async () => {
    starts++;
    return double();
  });
  await lazy.close();
  t.equal(starts, 0, 'closing does not start it');
});
