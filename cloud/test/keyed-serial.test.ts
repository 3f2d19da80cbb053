import t from 'tap';
import { KeyedSerial } from '../src/lib/serial.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('one key runs one at a time in call order; other keys do not wait; a failure does not stop the line', async (t) => {
  const s = new KeyedSerial();
  const log: string[] = [];
  const job = (name: string, ms: number, fail = false) => async () => {
    log.push(`${name}+`);
    await tick(ms);
    log.push(`${name}-`);
    if (fail) throw new Error(name);
    return name;
  };
  const a1 = s.run('a', job('a1', 30, true));
  const a2 = s.run('a', job('a2', 5));
  const b1 = s.run('b', job('b1', 5));
  await t.rejects(a1, { message: 'a1' });
  t.equal(await a2, 'a2');
  t.equal(await b1, 'b1');
  t.ok(log.indexOf('b1-') < log.indexOf('a1-'), 'b ran beside a');
  t.ok(log.indexOf('a1-') < log.indexOf('a2+'), 'a2 started after a1 ended');
});
