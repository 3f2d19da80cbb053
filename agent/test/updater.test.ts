// The Updater's state machine over real HTTP and a real database. Two test doubles: the
// cloud's firmware routes (a loopback server: target with ETag/304, the bundle with Range, the
// status reports it receives) until the cloud serves them, and the slot installer (RAUC writes
// real partitions; the QEMU tests cover that).
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FirmwareStatusRequest, FirmwareTarget } from '@vigil/protocol';
import { CloudClient } from '../src/cloud/cloud-client.js';
import { systemClock } from '../src/lib/clock.js';
import { VigilError } from '../src/lib/errors.js';
import { silentLogger } from '../src/lib/logger.js';
import { openDb } from '../src/store/db.js';
import { Kv } from '../src/store/kv.js';
import type { SlotInstaller } from '../src/update/installer.js';
import { Updater } from '../src/update/updater.js';

const BUNDLE = Buffer.concat([Buffer.from('SIGNED-BY-DEV-KEY\n'), randomBytes(200_000)]);

/** Test double of the cloud's firmware routes. */
async function firmwareCloud(t: Test) {
  const state = { target: { release: null, deploymentId: null } as FirmwareTarget, statuses: [] as FirmwareStatusRequest[], notModified: 0, bundle: BUNDLE };
  const srv = createServer((req, res) => {
    if (req.url === '/v1/firmware/target') {
      const etag = `"${createHash('sha256').update(JSON.stringify(state.target)).digest('hex').slice(0, 16)}"`;
      if (req.headers['if-none-match'] === etag) {
        state.notModified++;
        return void res.writeHead(304, { etag }).end();
      }
      return void res.writeHead(200, { etag, 'content-type': 'application/json' }).end(JSON.stringify(state.target));
    }
    if (req.url === '/v1/firmware/status' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        state.statuses.push(JSON.parse(body) as FirmwareStatusRequest);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
      return;
    }
    if (req.url?.startsWith('/v1/firmware/releases/')) return void res.writeHead(200, { 'content-length': state.bundle.length }).end(state.bundle);
    res.writeHead(404).end();
  }).listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return { state, url };
}

/** Test double of RAUC: "verifies" by a marker, records installs. */
function fakeInstaller(o: { failInstalls?: number } = {}) {
  const calls: string[] = [];
  let failures = o.failInstalls ?? 0;
  const installer: SlotInstaller = {
    inspect: async (bundle) => {
      calls.push('inspect');
      if (!readFileSync(bundle).subarray(0, 17).equals(Buffer.from('SIGNED-BY-DEV-KEY'))) throw new VigilError('BUNDLE_INVALID', 'signature does not verify');
      return { compatible: 'vigil-rpi4', version: '2.0.0' };
    },
    install: async () => {
      calls.push('install');
      if (failures-- > 0) throw new VigilError('INSTALL_FAILED', 'power cut during the slot write', { retryable: true });
    },
    markGood: async () => void calls.push('mark-good'),
  };
  return { installer, calls };
}

function device(t: Test, url: string, installer: SlotInstaller, fw: { version: string; trial: boolean }, health = { captured: false, uploaded: false }, rebootError?: Error) {
  const dir = t.testdir({});
  const db = openDb(join(dir, 'agent.db'));
  t.teardown(() => db.close());
  const client = new CloudClient({ baseUrl: url, token: () => 'tok' });
  t.teardown(() => client.close());
  const reboots: { tryboot: boolean; reason: string }[] = [];
  const make = (firmware = fw, uptimeS = 0) =>
    new Updater({
      client,
      installer,
      kv: new Kv(db),
      clock: systemClock,
      log: silentLogger(),
      dir: join(dir, 'update'),
      pollMs: 50,
      maxBundleBytes: 10_000_000,
      trialTimeoutMs: 600_000,
      firmware: () => firmware,
      uptimeS: () => uptimeS,
      health: () => health,
      reboot: (tryboot, reason) => (rebootError ? Promise.reject(rebootError) : void reboots.push({ tryboot, reason })),
    });
  return { make, reboots, health };
}

const release = (url: string, bundle = BUNDLE) => ({
  release: { id: 'rel_2', version: '2.0.0', bytes: bundle.length, sha256: createHash('sha256').update(bundle).digest('hex'), url: `${url}/v1/firmware/releases/rel_2/bundle` },
  deploymentId: 'dep_1',
});

const until = async (pred: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!pred()) throw new Error(`timed out waiting for ${what}`);
};

t.test('a new target: download, verify, install, reboot into the trial; each step reported; 304 while unchanged', async (t) => {
  const cloud = await firmwareCloud(t);
  const { installer, calls } = fakeInstaller({ failInstalls: 1 });
  const d = device(t, cloud.url, installer, { version: '1.0.0', trial: false });
  const updater = d.make();
  const stop = new AbortController();
  const running = updater.start(stop.signal);
  await until(() => cloud.state.notModified >= 1, 'a 304 for the unchanged target');
  t.same(calls, [], 'no target, nothing done');
  cloud.state.target = release(cloud.url);
  await until(() => d.reboots.length === 1, 'the reboot into the trial');
  stop.abort();
  await running;
  t.same(calls, ['inspect', 'install', 'inspect', 'install'], 'verified before each write; the interrupted install was tried again');
  t.same(d.reboots, [{ tryboot: true, reason: 'update to 2.0.0' }]);
  t.same(cloud.state.statuses.map((s) => s.state), ['downloading', 'installing', 'downloading', 'installing', 'trial']);
  t.same(updater.status()?.state, 'trial');
});

t.test('a tampered bundle is rejected before any write, reported, and not tried again', async (t) => {
  const cloud = await firmwareCloud(t);
  const tampered = Buffer.from(BUNDLE);
  tampered[3] = tampered[3]! ^ 0xff;
  cloud.state.bundle = tampered;
  cloud.state.target = release(cloud.url, tampered);
  const { installer, calls } = fakeInstaller();
  const d = device(t, cloud.url, installer, { version: '1.0.0', trial: false });
  const updater = d.make();
  const stop = new AbortController();
  const running = updater.start(stop.signal);
  await until(() => cloud.state.statuses.some((s) => s.state === 'failed'), 'the failure report');
  await new Promise((r) => setTimeout(r, 300));
  stop.abort();
  await running;
  t.same(calls, ['inspect'], 'never installed');
  const failed = cloud.state.statuses.find((s) => s.state === 'failed')!;
  t.match(failed.reason, /^BUNDLE_INVALID: signature does not verify/);
  t.equal(cloud.state.statuses.filter((s) => s.state === 'downloading').length, 1, 'not downloaded again');
  t.same(d.reboots, []);
});

t.test('the trial boot commits once a frame is captured and an upload acknowledged', async (t) => {
  const cloud = await firmwareCloud(t);
  const { installer, calls } = fakeInstaller();
  const d = device(t, cloud.url, installer, { version: '2.0.0', trial: true });
  const stop = new AbortController();
  const running = d.make().start(stop.signal);
  await new Promise((r) => setTimeout(r, 100));
  t.same(calls, [], 'not committed before the product works');
  d.health.captured = true;
  d.health.uploaded = true;
  await until(() => cloud.state.statuses.some((s) => s.state === 'committed'), 'the commit report');
  stop.abort();
  await running;
  t.same(calls, ['mark-good']);
  t.same(d.reboots, []);
});

t.test('a trial that never gets healthy reboots to the old slot, which reports it reverted with the reason', async (t) => {
  const cloud = await firmwareCloud(t);
  const { installer, calls } = fakeInstaller();
  const d = device(t, cloud.url, installer, { version: '1.0.0', trial: false });
  // Installed and rebooted into the trial
  const first = d.make();
  cloud.state.target = release(cloud.url);
  let stop = new AbortController();
  let running = first.start(stop.signal);
  await until(() => d.reboots.length === 1, 'the trial reboot');
  stop.abort();
  await running;
  // The trial boot: a frame but no upload, and the time limit has passed
  d.health.captured = true;
  stop = new AbortController();
  running = d.make({ version: '2.0.0', trial: true }, 601).start(stop.signal);
  await until(() => d.reboots.length === 2, 'the reboot back');
  t.same(cloud.state.statuses.at(-1), { ...cloud.state.statuses.at(-1), state: 'trial', reason: 'trial of 2.0.0 not healthy within 600 s of boot: no upload acknowledged' }, 'the reason goes to the cloud before the reboot');
  stop.abort(); // init stops the agent for the reboot
  await running;
  t.same(d.reboots[1], { tryboot: false, reason: 'trial of 2.0.0 not healthy within 600 s of boot: no upload acknowledged' });
  t.notOk(calls.includes('mark-good'), 'never committed');
  // Back on the old slot
  stop = new AbortController();
  running = d.make({ version: '1.0.0', trial: false }).start(stop.signal);
  await until(() => cloud.state.statuses.some((s) => s.state === 'reverted'), 'the revert report');
  stop.abort();
  await running;
  const reverted = cloud.state.statuses.find((s) => s.state === 'reverted');
  t.match(reverted ?? {}, { releaseId: 'rel_2', version: '2.0.0', deploymentId: 'dep_1', reason: /no upload acknowledged/ });
  t.equal(d.reboots.length, 2, 'the reverted release is not installed again');
});

t.test('a reboot into the trial that cannot start fails the update, with the reason, and it is not tried again', async (t) => {
  const cloud = await firmwareCloud(t);
  const { installer, calls } = fakeInstaller();
  // The reboot command is missing: the device cannot go into the trial
  const missing = new VigilError('REBOOT_FAILED', '/usr/sbin/vigil-reboot tryboot: not found');
  const d = device(t, cloud.url, installer, { version: '1.0.0', trial: false }, undefined, missing);
  cloud.state.target = release(cloud.url);
  const stop = new AbortController();
  const running = d.make().start(stop.signal);
  await until(() => cloud.state.statuses.some((s) => s.state === 'failed'), 'the failure report');
  await new Promise((r) => setTimeout(r, 300));
  stop.abort();
  await running;
  t.same(calls, ['inspect', 'install'], 'installed once, not again');
  t.match(cloud.state.statuses.find((s) => s.state === 'failed')?.reason, /^REBOOT_FAILED: \/usr\/sbin\/vigil-reboot tryboot: not found/);
});
