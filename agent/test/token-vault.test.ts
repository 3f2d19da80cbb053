import t from 'tap';
import { join } from 'node:path';
import { statSync, writeFileSync } from 'node:fs';
import { openDb } from '../src/store/db.js';
import { Kv } from '../src/store/kv.js';
import { TokenVault } from '../src/auth/token-vault.js';
import { deriveTokenKey, hardwareId, loadOrCreateSecret, readHardwareSerial } from '../src/auth/device-identity.js';

t.test('the token is encrypted at rest and readable only with the same key', async (t) => {
  const dir = t.testdir({});
  const db = openDb(join(dir, 'agent.db'));
  t.teardown(() => db.close());
  const secret = await loadOrCreateSecret(join(dir, 'device.secret'));
  t.equal(statSync(join(dir, 'device.secret')).mode & 0o777, 0o600);
  t.same(await loadOrCreateSecret(join(dir, 'device.secret')), secret, 'the secret is created once');
  const kv = new Kv(db);
  const vault = new TokenVault(kv, deriveTokenKey('10000000abcdef01', secret));
  t.equal(vault.load(), undefined);
  vault.save('vgl_supersecret', 1);
  t.equal(vault.load(), 'vgl_supersecret');
  const raw = kv.get('device_token')!;
  t.notOk(raw.toString('latin1').includes('supersecret'), 'no plaintext in the database');
  const otherBoard = new TokenVault(kv, deriveTokenKey('10000000ffffffff', secret));
  t.throws(() => otherBoard.load(), { code: 'TOKEN_UNREADABLE' }, 'the card in another board cannot read it');
  vault.clear();
  t.equal(vault.load(), undefined);
});

t.test('hardware serial sources: device tree, cpuinfo, machine-id', async (t) => {
  const dir = t.testdir({
    dt: '10000000abcdef01\0',
    cpuinfo: 'processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 10000000cafe0001\n',
    zero: '0000000000000000\n',
  });
  t.equal(await readHardwareSerial([join(dir, 'missing'), join(dir, 'dt')]), '10000000abcdef01');
  t.equal(await readHardwareSerial([join(dir, 'zero'), join(dir, 'cpuinfo')]), '10000000cafe0001');
  await t.rejects(readHardwareSerial([join(dir, 'missing')]), /no hardware serial/);
  t.equal(hardwareId('x').length, 32);
  t.not(hardwareId('a'), hardwareId('b'));
  writeFileSync(join(dir, 'bad.secret'), 'short');
  await t.rejects(loadOrCreateSecret(join(dir, 'bad.secret')), /expected 32/);
});
