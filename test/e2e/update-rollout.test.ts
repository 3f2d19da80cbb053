// The agent's Updater against the real cloud's firmware routes: a release uploaded, a staged
// deployment to two devices with one at a time; the first device downloads, installs and
// reboots into its trial, which never gets healthy, so it comes back on the old slot and
// reports the update reverted with the reason; the rollout halts and the second device is
// never told to update. The slot installer is a test double (RAUC writes real partitions: the
// QEMU tests cover that).
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { CloudClient } from '../../agent/src/cloud/cloud-client.js';
import { systemClock } from '../../agent/src/lib/clock.js';
import { VigilError } from '../../agent/src/lib/errors.js';
import { silentLogger } from '../../agent/src/lib/logger.js';
import { openDb } from '../../agent/src/store/db.js';
import { Kv } from '../../agent/src/store/kv.js';
import type { SlotInstaller } from '../../agent/src/update/installer.js';
import { Updater } from '../../agent/src/update/updater.js';
import { startTestCloud } from '../helpers/cloud.js';
import { waitFor } from '../helpers/wait.js';

const MARK = Buffer.from('SIGNED-BY-DEV-KEY');
const BUNDLE = Buffer.concat([MARK, randomBytes(300_000)]);

interface Deployment {
  state: 'active' | 'halted';
  haltReason: string | null;
  devices: { deviceId: string; state: string; reason: string | null }[];
}

/** Test double of RAUC: "verifies" by a marker, records what it was asked. */
function fakeRauc(calls: string[]): SlotInstaller {
  return {
    inspect: async (bundle) => {
      calls.push('inspect');
      if (!readFileSync(bundle).subarray(0, MARK.length).equals(MARK)) throw new VigilError('BUNDLE_INVALID', 'signature does not verify');
      return { compatible: 'vigil-rpi4', version: '2.0.0' };
    },
    install: async () => void calls.push('install'),
    markGood: async () => void calls.push('mark-good'),
  };
}

function device(t: Test, cloudUrl: string, token: string) {
  const dir = t.testdir({});
  const db = openDb(join(dir, 'agent.db'));
  t.teardown(() => db.close());
  const client = new CloudClient({ baseUrl: cloudUrl, token: () => token });
  t.teardown(() => client.close());
  const calls: string[] = [];
  const reboots: { tryboot: boolean; reason: string }[] = [];
  const boot = (firmware: { version: string; trial: boolean }, uptimeS = 0) =>
    new Updater({
      client,
      installer: fakeRauc(calls),
      kv: new Kv(db),
      clock: systemClock,
      log: silentLogger(),
      dir: join(dir, 'update'),
      pollMs: 100,
      maxBundleBytes: 10_000_000,
      trialTimeoutMs: 600_000,
      firmware: () => firmware,
      uptimeS: () => uptimeS,
      health: () => ({ captured: true, uploaded: false }),
      reboot: (tryboot, reason) => void reboots.push({ tryboot, reason }),
    });
  /** Runs an Updater until `done` holds, then stops it. */
  const runUntil = async (u: Updater, done: () => boolean | Promise<boolean>, what: string) => {
    const stop = new AbortController();
    const running = u.start(stop.signal);
    await waitFor(done, 20_000, what, 50);
    stop.abort();
    await running;
  };
  return { boot, runUntil, calls, reboots };
}

t.test('staged rollout: a trial that never gets healthy is reverted, reported, and halts the rollout', async (t) => {
  const cloud = await startTestCloud(t);
  const [a, b] = [await cloud.claim('hw-update-a'), await cloud.claim('hw-update-b')];
  const res = await fetch(`${cloud.url}/admin/v1/firmware/releases?version=2.0.0`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cloud.adminToken}`, 'content-type': 'application/octet-stream' },
    body: BUNDLE,
  });
  t.equal(res.status, 201, 'release uploaded');
  const rel = (await res.json()) as { id: string; bytes: number };
  t.equal(rel.bytes, BUNDLE.length);
  const dep = await cloud.admin<{ id: string }>('POST', '/admin/v1/firmware/deployments', { releaseId: rel.id, deviceIds: [a.deviceId, b.deviceId], maxConcurrent: 1, failureThreshold: 1 });
  t.equal(dep.status, 201, 'deployment created');
  const deployment = async () => (await cloud.admin<Deployment>('GET', `/admin/v1/firmware/deployments/${dep.body.id}`)).body;
  const stateOf = async (id: string) => (await deployment()).devices.find((d) => d.deviceId === id)?.state;

  const devA = device(t, cloud.url, a.token);
  await devA.runUntil(devA.boot({ version: '1.0.0', trial: false }), () => devA.reboots.length === 1, 'A to reboot into its trial');
  t.same(devA.calls, ['inspect', 'install'], 'A verified the bundle, then installed it');
  t.same(devA.reboots[0], { tryboot: true, reason: 'update to 2.0.0' });
  t.equal(await stateOf(a.deviceId), 'trial', 'the cloud knows A is on trial');

  const devB = device(t, cloud.url, b.token);
  const waiting = devB.boot({ version: '1.0.0', trial: false });
  const stop = new AbortController();
  const runningB = waiting.start(stop.signal);
  await new Promise((r) => setTimeout(r, 500));
  t.same(devB.calls, [], 'B waits: one device at a time');

  // A's trial boot: a frame, but no upload acknowledged, and the time limit has passed
  await devA.runUntil(devA.boot({ version: '2.0.0', trial: true }, 601), () => devA.reboots.length === 2, 'A to reboot back');
  t.match(devA.reboots[1], { tryboot: false, reason: /not healthy within 600 s of boot: no upload acknowledged/ });
  // Back on the old slot, A reports the revert
  await devA.runUntil(devA.boot({ version: '1.0.0', trial: false }), async () => (await stateOf(a.deviceId)) === 'reverted', 'the revert in the cloud');
  const after = await deployment();
  t.match(after.devices.find((d) => d.deviceId === a.deviceId)?.reason, /no upload acknowledged/, 'the rollback reason is in the cloud');
  t.equal(after.state, 'halted', 'one failure halts the rollout');
  t.ok(after.haltReason, `halted: ${after.haltReason}`);

  await new Promise((r) => setTimeout(r, 500));
  stop.abort();
  await runningB;
  t.same(devB.calls, [], 'B was never told to update');
  t.equal(devA.calls.filter((c) => c === 'install').length, 1, 'A did not try the reverted release again');
});
