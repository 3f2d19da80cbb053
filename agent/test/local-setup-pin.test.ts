// The setup PIN store: the card's PIN adopted and kept, else the stored one, else a new one
// stored durably (0600) before it is used; a damaged file or a malformed card PIN never locks
// the technician out.
import t from 'tap';
import { readFileSync, statSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateSetupPin, loadSetupPin, SetupPin, setupPinProblem, SETUP_PIN_RE } from '../src/local/setup-pin.js';
import { silentLogger } from '../src/lib/logger.js';

const log = silentLogger();
const mode = (f: string): number => statSync(f).mode & 0o777;

t.test('a new device makes a PIN once, stores it 0600, and keeps it', async (t) => {
  const file = join(t.testdir({}), 'sub', 'setup-pin');
  const first = await loadSetupPin({ file, log });
  t.equal(first.source, 'generated');
  t.match(first.pin, SETUP_PIN_RE, '8 digits');
  t.equal(readFileSync(file, 'utf8'), `${first.pin}\n`, 'stored before it is used');
  t.equal(mode(file), 0o600, 'only root may read it');
  t.notOk(existsSync(`${file}.tmp`), 'no temporary file left');
  const again = await loadSetupPin({ file, log });
  t.same(again, { pin: first.pin, source: 'stored' }, 'the same PIN after a restart');
});

t.test("the card's PIN is adopted, stored, and outlives the card", async (t) => {
  const file = join(t.testdir({}), 'setup-pin');
  const made = await loadSetupPin({ file, log });
  const fromCard = made.pin === '48213957' ? '11112222' : '48213957';
  t.same(await loadSetupPin({ file, pinFromCard: fromCard, log }), { pin: fromCard, source: 'card' }, "the card's PIN replaces the made one");
  t.equal(readFileSync(file, 'utf8').trim(), fromCard, 'and is stored');
  t.same(await loadSetupPin({ file, log }), { pin: fromCard, source: 'stored' }, 'card gone: the PIN stays');
  t.same(await loadSetupPin({ file, pinFromCard: ` ${fromCard}\r`, log }), { pin: fromCard, source: 'card' }, 'spaces and CR around it are not part of it');
});

t.test('a malformed card PIN is ignored (the stored one still opens the page)', async (t) => {
  const file = join(t.testdir({ 'setup-pin': '01234567\n' }), 'setup-pin');
  for (const bad of ['1234567', '123456789', '1234abcd', '1234 5678']) {
    t.same(await loadSetupPin({ file, pinFromCard: bad, log }), { pin: '01234567', source: 'stored' }, JSON.stringify(bad));
  }
  t.equal(readFileSync(file, 'utf8'), '01234567\n', 'the stored PIN is untouched');
});

t.test('a damaged stored PIN is replaced; a loose file mode is tightened', async (t) => {
  const dir = t.testdir({ damaged: '12\u0000xx', loose: '76543210\n' });
  const damaged = await loadSetupPin({ file: join(dir, 'damaged'), log });
  t.equal(damaged.source, 'generated');
  t.equal(readFileSync(join(dir, 'damaged'), 'utf8'), `${damaged.pin}\n`);
  chmodSync(join(dir, 'loose'), 0o644);
  t.same(await loadSetupPin({ file: join(dir, 'loose'), log }), { pin: '76543210', source: 'stored' });
  t.equal(mode(join(dir, 'loose')), 0o600);
});

t.test('an unwritable place is an error, and SetupPin tries again on the next call', async (t) => {
  const dir = t.testdir({ blocker: 'a file, not a directory' });
  const pin = new SetupPin({ file: join(dir, 'blocker', 'setup-pin'), log });
  await t.rejects(pin.get(), { code: 'ENOTDIR' });
  t.equal(pin.current, null);
  const good = new SetupPin({ file: join(dir, 'setup-pin'), pinFromCard: () => '20262026', log });
  t.equal(await good.get(), '20262026');
  t.same(good.current, { pin: '20262026', source: 'card' }, 'the heartbeat reads it once loaded');
  writeFileSync(join(dir, 'setup-pin'), '99999999\n');
  t.equal(await good.get(), '20262026', 'loaded once per run');
});

t.test('generated PINs: 8 digits, leading zeros kept, not repeating', async (t) => {
  const pins = Array.from({ length: 2000 }, generateSetupPin);
  t.same(pins.filter((p) => setupPinProblem(p) !== null), [], 'every one is 8 digits');
  t.ok(pins.some((p) => p.startsWith('0')), 'leading zeros are kept (about 200 of 2000 start with 0)');
  t.ok(new Set(pins).size > 1990, `${new Set(pins).size} distinct of 2000`);
  t.equal(setupPinProblem('00000001'), null);
  t.match(setupPinProblem('1234567'), /exactly 8 digits/);
});
