// Camera credentials: a site default and per-camera overrides (by key or MAC), sealed at rest
// with the device key (the password is not in the database file), and the config seed.
import t, { type Test } from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openDb } from '../src/store/db.js';
import { Kv } from '../src/store/kv.js';
import { deriveDeviceKey, deriveTokenKey } from '../src/auth/device-identity.js';
import { TokenVault } from '../src/auth/token-vault.js';
import { CameraCredentialStore, credentialScope, DEFAULT_SCOPE, loadCredentialsKey } from '../src/cameras/credentials.js';
import { parseConfig } from '../src/config.js';

const SECRET = Buffer.alloc(32, 9);
const PASSWORD = 'Pässw0rd-that-must-not-leak';

function rig(t: Test) {
  const dir = t.testdir({});
  const db = openDb(join(dir, 'agent.db'));
  const kv = new Kv(db);
  const store = new CameraCredentialStore(kv, deriveDeviceKey('10000000abcdef01', SECRET, 'camera-credentials'));
  return { dir, db, kv, store, close: () => db.close() };
}

t.test('default, then MAC, then key overrides; the right one wins', async (t) => {
  const { store, close } = rig(t);
  t.teardown(close);
  t.equal(store.forCamera({ key: 'mac-001122aabbcc', mac: '00:11:22:aa:bb:cc' }), undefined, 'nothing set');
  store.set(undefined, { username: 'admin', password: 'site' }, 1);
  t.same(store.forCamera({ key: 'mac-001122aabbcc' }), { scope: DEFAULT_SCOPE, credentials: { username: 'admin', password: 'site' } });
  t.equal(store.set('00-11-22-AA-BB-CC', { username: 'admin', password: 'door' }, 2), 'mac-001122aabbcc', 'a MAC names the camera key');
  t.equal(store.forCamera({ key: 'sn-42', mac: '00:11:22:aa:bb:cc' })!.credentials.password, 'door', 'by MAC for a camera keyed otherwise');
  t.equal(store.forCamera({ key: 'ep-1234', mac: null })!.credentials.password, 'site', 'an unidentified camera gets the default');
  store.set('sn-42', { username: 'op', password: 'serial' }, 3);
  t.equal(store.forCamera({ key: 'sn-42', mac: '00:11:22:aa:bb:cc' })!.credentials.password, 'serial', 'the key before the MAC');
  t.same(store.list(), [
    { scope: 'default', username: 'admin' },
    { scope: 'mac-001122aabbcc', username: 'admin' },
    { scope: 'sn-42', username: 'op' },
  ]);
  store.set('ep-0f0e', { username: 'x', password: 'provisional' }, 4);
  t.ok(store.rekey('ep-0f0e', 'mac-0000000000ee', 4), 'a provisional camera\'s credentials follow it');
  t.equal(store.forCamera({ key: 'mac-0000000000ee' })!.credentials.password, 'provisional');
  t.notOk(store.rekey('ep-0f0e', 'mac-0000000000ee', 4), 'nothing left to move');
  store.remove('mac-0000000000ee', 4);
  t.ok(store.remove('sn-42', 4));
  t.notOk(store.remove('sn-42', 5));
  t.throws(() => credentialScope('not a key!'), { code: 'CREDENTIALS_SCOPE_INVALID' });
  t.throws(() => store.set(undefined, { username: '', password: 'x' }, 6), { code: 'CREDENTIALS_INVALID' });
});

t.test('encrypted at rest: the password is nowhere in the database files; another board cannot read it', async (t) => {
  const { dir, db, kv, store } = rig(t);
  store.set(undefined, { username: 'admin', password: PASSWORD }, 1);
  store.set('mac-001122aabbcc', { username: 'door', password: PASSWORD }, 2);
  db.pragma('wal_checkpoint(TRUNCATE)');
  for (const f of readdirSync(dir)) {
    const bytes = readFileSync(join(dir, f));
    t.notOk(bytes.includes(Buffer.from(PASSWORD, 'utf8')), `no password in ${f}`);
    t.notOk(bytes.includes(Buffer.from('Pässw0rd', 'latin1')), `nor a latin-1 spelling of it in ${f}`);
  }
  const other = new CameraCredentialStore(kv, deriveDeviceKey('10000000ffffffff', SECRET, 'camera-credentials'));
  t.throws(() => other.forCamera({ key: 'x' }), { code: 'CREDENTIALS_UNREADABLE' });
  const tokenKeyed = new CameraCredentialStore(kv, deriveTokenKey('10000000abcdef01', SECRET));
  t.throws(() => tokenKeyed.forCamera({ key: 'x' }), { code: 'CREDENTIALS_UNREADABLE' }, "the token's key does not open the credentials");
  // The token vault and the credentials share the sealing, not the key or the record.
  const vault = new TokenVault(kv, deriveTokenKey('10000000abcdef01', SECRET));
  vault.save('vgl_token', 3);
  t.equal(vault.load(), 'vgl_token');
  t.equal(store.forCamera({ key: 'x' })!.credentials.password, PASSWORD);
  db.close();
});

t.test('the config seed is imported once; a later CLI change survives restarts', async (t) => {
  const { store, close } = rig(t);
  t.teardown(close);
  const seed = { default: { username: 'admin', password: 'seed' }, cameras: { '00:11:22:aa:bb:cc': { username: 'door', password: 'seed-door' } } };
  t.same(store.importSeed(seed, 1), ['default', 'mac-001122aabbcc']);
  t.equal(store.forCamera({ key: 'mac-001122aabbcc' })!.credentials.password, 'seed-door');
  store.set(undefined, { username: 'admin', password: 'typed-later' }, 2);
  t.same(store.importSeed(seed, 3), [], 'the same seed at the next start changes nothing');
  t.equal(store.forCamera({ key: 'x' })!.credentials.password, 'typed-later');
  t.same(store.importSeed({ ...seed, default: { username: 'admin', password: 'seed-2' } }, 4), ['default'], 'an edited seed is imported');
  t.equal(store.forCamera({ key: 'x' })!.credentials.password, 'seed-2');
  t.same(store.importSeed(undefined, 5), []);
});

t.test("the credentials key comes from the board serial and the device secret", async (t) => {
  const dir = t.testdir({ serial: '10000000abcdef01\n' });
  const config = parseConfig({ cloudUrl: 'http://127.0.0.1:1', dataDir: dir, serialSources: [join(dir, 'serial')] });
  const k1 = await loadCredentialsKey(config);
  const k2 = await loadCredentialsKey(config);
  t.equal(k1.length, 32);
  t.same(k1, k2, 'stable');
  const secret = readFileSync(join(dir, 'device.secret'));
  t.same(k1, deriveDeviceKey('10000000abcdef01', secret, 'camera-credentials'));
  t.notSame(k1, deriveTokenKey('10000000abcdef01', secret), 'not the token key');
});
