// DeviceAuth's claim codes against the real cloud (in-process, loopback): a code typed on the
// status page, the same code typed again, and a card code the cloud refuses while the device's
// token works. The card and the SD card's erase are functions here; test/e2e/card-claim.test.ts
// runs the whole path with the firmware's vigil-card script.
import t from 'tap';
import { join } from 'node:path';
import { openDb } from '../src/store/db.js';
import { Kv } from '../src/store/kv.js';
import { Bus } from '../src/lib/bus.js';
import { systemClock } from '../src/lib/clock.js';
import { silentLogger } from '../src/lib/logger.js';
import { CloudClient } from '../src/cloud/cloud-client.js';
import { TokenVault } from '../src/auth/token-vault.js';
import { DeviceAuth, USED_CODE_KEY } from '../src/auth/device-auth.js';
import { startTestCloud } from '../../test/helpers/cloud.js';
import { tmpDir } from '../../test/helpers/tmp.js';
import { waitFor } from '../../test/helpers/wait.js';

t.test('form code, the same code again, and a refused card code while the token works', async (t) => {
  const cloud = await startTestCloud(t);
  const db = openDb(join(await tmpDir(t), 'agent.db'));
  t.teardown(() => db.close());
  const kv = new Kv(db);
  const vault = new TokenVault(kv, Buffer.alloc(32, 3));
  let card: string | undefined;
  let erased = 0;
  // One agent start: the card is read at every pass, as the firmware's copy is
  const startAuth = () => {
    const client: CloudClient = new CloudClient({ baseUrl: cloud.url, token: () => auth.token() });
    const auth: DeviceAuth = new DeviceAuth({
      vault,
      kv,
      client,
      bus: new Bus(),
      clock: systemClock,
      log: silentLogger(),
      hardwareId: 'hw-form',
      deviceName: 'front',
      cardCode: () => card,
      eraseCardCode: async () => {
        erased++;
        card = undefined;
      },
      checkSchedule: '0 0 1 1 *',
    });
    const stop = new AbortController();
    const running = auth.start(stop.signal);
    let ended: Promise<void> | undefined;
    const end = () =>
      (ended ??= (async () => {
        stop.abort();
        await running;
        await client.close();
      })());
    t.teardown(end);
    return { auth, end };
  };

  const first = startAuth();
  const auth = first.auth;
  const code = await cloud.claimCode('Cafe Lune');
  auth.submitClaimCode(` ${code.toLowerCase()} `);
  await waitFor(() => auth.state === 'valid', 10_000, 'the form code claims the device');
  t.match(auth.claim, { source: 'form', state: 'claimed', reason: 'device dev_' });
  const token = vault.load();
  t.ok(kv.get(USED_CODE_KEY), 'the spent code is remembered (by hash)');
  t.notMatch(kv.get(USED_CODE_KEY)!.toString(), new RegExp(code.replace(/-/g, '')), 'not the code itself');

  auth.submitClaimCode(code);
  t.match(auth.claim, { source: 'form', state: 'claimed', reason: 'this code already gave this device its token' }, 'typed again: said at once');
  t.equal(vault.load(), token, 'and not sent again');

  await first.end();

  // The next start, with the same code on the card (written before the form was used): spent,
  // so erased and not sent
  card = code;
  const second = startAuth();
  await waitFor(() => erased === 1 && second.auth.state === 'valid', 10_000, 'the spent card code erased');
  t.equal(vault.load(), token, 'the token is the one the form gave');
  await second.end();

  // The next start, with a code for another site on the card, while the device works at Cafe Lune
  card = await cloud.claimCode('Other Site');
  const third = startAuth();
  await waitFor(() => third.auth.claim.state === 'refused' && third.auth.state === 'valid', 10_000, 'the other site refuses');
  t.match(third.auth.claim.reason, /^claim code refused: CLAIM_DEVICE_OTHER_SITE: this device is registered at site "Cafe Lune"/, "in the cloud's words");
  t.equal(vault.load(), token, 'the token still works and is kept');
  t.equal(erased, 1, 'a refused code is not erased');
});
