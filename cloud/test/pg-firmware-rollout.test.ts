import t from 'tap';
import type { DeviceTarget } from '../src/store/firmware-types.js';
import { PgStore } from '../src/store/pg-store.js';
import { startPostgres } from '../../test/helpers/postgres.js';

// Staged rollouts decided by two cloud replicas at once: two PgStores (two pools, as two
// processes have) on one real PostgreSQL database, answering many devices' update checks and
// reports concurrently. On SQLite one writer runs at a time, so these races cannot happen
// there; here the deployment row's lock is what keeps a rollout within its limits.

const DEVICES = 12;
const ROUNDS = 5;
const RELEASE = { bytes: 5000, sha256: 'ab'.repeat(32), verified: false };

type Tap = Parameters<typeof startPostgres>[0];

/** Two replicas' stores on one database, and `DEVICES` claimed devices of one site. */
async function replicas(t: Tap, url: string, site: string) {
  const [a, b] = await Promise.all([PgStore.open({ url, poolSize: DEVICES }), PgStore.open({ url, poolSize: DEVICES })]);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await a.createClaimCode({ siteName: site, newSiteId: `site_${site}`, codeHash: `code-${site}`, expiresAt: Number.MAX_SAFE_INTEGER, now: 1 });
  const deviceIds: string[] = [];
  for (let i = 0; i < DEVICES; i++) {
    await a.createClaimCode({ siteName: site, newSiteId: `site_${site}`, codeHash: `code-${site}-${i}`, expiresAt: Number.MAX_SAFE_INTEGER, now: 1 });
    const c = await a.claim({ codeHash: `code-${site}-${i}`, hardwareId: `hw-${site}-${i}`, name: undefined, tokenHash: `token-${site}-${i}`, newDeviceId: `dev_${site}_${i}`, now: 1 });
    if (!c.ok) throw new Error(`claim: ${c.reason}`);
    deviceIds.push(c.device.id);
  }
  return { a, b, deviceIds };
}

t.test('on PostgreSQL, with two replicas', async (t) => {
  const { url } = await startPostgres(t);

  t.test('update checks at once on both replicas never start more than maxConcurrent, and each device once', async (t) => {
    const { a, b, deviceIds } = await replicas(t, url, 'slots');
    t.ok(await a.firmware.createRelease({ ...RELEASE, id: 'rel_slots', version: 'v-slots', objectKey: 'firmware/rel_slots.raucb', createdAt: 1 }));
    for (let round = 1; round <= ROUNDS; round++) {
      // Each round is a newer deployment of the same devices: they follow it.
      const deploymentId = `dep_slots_${round}`;
      await a.firmware.createDeployment({ id: deploymentId, releaseId: 'rel_slots', siteId: null, deviceIds, maxConcurrent: 3, failureThreshold: 1, now: 10 * round });
      // Every device asks both replicas at the same moment.
      const answers = await Promise.all(deviceIds.map((id) => Promise.all([a.firmware.targetFor(id, 10 * round + 1), b.firmware.targetFor(id, 10 * round + 1)])));
      const d = (await b.firmware.getDeployment(deploymentId))!;
      t.equal(d.counts.started, 3, `round ${round}: exactly maxConcurrent devices started`);
      t.equal(d.counts.waiting, DEVICES - 3, `round ${round}: the rest wait`);
      const started = d.devices.filter((x) => x.state === 'started').map((x) => x.deviceId);
      const told = (answer: DeviceTarget | null) => answer?.deploymentId === deploymentId && answer.release.id === 'rel_slots';
      t.same(
        deviceIds.filter((_, i) => told(answers[i]![0]) || told(answers[i]![1])),
        started,
        `round ${round}: the devices told to update are exactly those holding a slot`,
      );
      t.ok(
        answers.every(([x, y]) => told(x) === told(y)),
        `round ${round}: a started device is told by both replicas (the second saw it started), a waiting one by neither`,
      );
    }
  });

  t.test('failures reported at once on both replicas halt the deployment once, at the threshold', async (t) => {
    const { a, b, deviceIds } = await replicas(t, url, 'failures');
    t.ok(await a.firmware.createRelease({ ...RELEASE, id: 'rel_fail', version: 'v-fail', objectKey: 'firmware/rel_fail.raucb', createdAt: 1 }));
    for (let round = 1; round <= ROUNDS; round++) {
      const deploymentId = `dep_fail_${round}`;
      await a.firmware.createDeployment({ id: deploymentId, releaseId: 'rel_fail', siteId: null, deviceIds, maxConcurrent: DEVICES, failureThreshold: 2, now: 10 * round });
      for (const id of deviceIds) t.equal((await a.firmware.targetFor(id, 10 * round + 1))?.deploymentId, deploymentId);
      // Every device fails at the same moment, half reporting to each replica.
      const results = await Promise.all(
        deviceIds.map((deviceId, i) =>
          (i % 2 === 0 ? a : b).firmware.recordStatus({ deviceId, deploymentId, releaseId: 'rel_fail', state: 'failed', reason: `boom ${i}`, reportedAt: 5, now: 10 * round + 2 }),
        ),
      );
      t.ok(
        results.every((r) => r.ok && r.recorded),
        `round ${round}: every report is recorded`,
      );
      t.equal(results.filter((r) => r.ok && r.halted).length, 1, `round ${round}: exactly one report halts the deployment`);
      const d = (await b.firmware.getDeployment(deploymentId))!;
      t.equal(d.state, 'halted');
      t.match(d.haltReason, /^2 device\(s\) failed or reverted, threshold 2; last: dev_failures_\d+ failed: boom \d+$/, `round ${round}: halted by the second failure, whichever came second`);
      t.equal(d.counts.failed, DEVICES);
    }
  });
});
