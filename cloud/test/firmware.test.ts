// Firmware on the cloud side: releases (upload, checks), the device's target (ETag, 304),
// resumable bundle download (Range, If-Range) and staged rollouts (slots, failure threshold).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { claimDevice, http, sha256, startTestCloud, tempDir, type TestCloud } from './helpers.js';

const OCTETS = { 'content-type': 'application/octet-stream' };

function bundleBytes(seed: number, size = 5000): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed * 13 + (i >> 5)) & 255;
  return b;
}

async function upload(cloud: TestCloud, version: string, body: Buffer) {
  return http(cloud.url, 'POST', `/admin/v1/firmware/releases?version=${version}`, { token: cloud.adminToken, body, headers: OCTETS });
}

async function deploy(cloud: TestCloud, json: Record<string, unknown>) {
  const res = await http(cloud.url, 'POST', '/admin/v1/firmware/deployments', { token: cloud.adminToken, json });
  if (res.status !== 201) throw new Error(`deploy: ${res.status} ${res.raw.toString()}`);
  return res.body.id as string;
}

async function devices(cloud: TestCloud, n: number): Promise<{ id: string; token: string }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const c = await claimDevice(cloud, `hw-${i}`);
    out.push({ id: c.deviceId, token: c.token });
  }
  return out;
}

const target = (cloud: TestCloud, token: string, headers: Record<string, string> = {}) => http(cloud.url, 'GET', '/v1/firmware/target', { token, headers });
const status = (cloud: TestCloud, token: string, json: Record<string, unknown>) => http(cloud.url, 'POST', '/v1/firmware/status', { token, json });

/** A release on a new cloud, deployed to `n` devices. */
async function rollout(t: Tap, n: number, o: Record<string, unknown> = {}) {
  const cloud = await startTestCloud(t);
  const bytes = bundleBytes(1);
  const rel = await upload(cloud, '2025.02.1', bytes);
  const devs = await devices(cloud, n);
  const deploymentId = await deploy(cloud, { releaseId: rel.body.id, deviceIds: devs.map((d) => d.id), ...o });
  return { cloud, bytes, releaseId: rel.body.id as string, devs, deploymentId };
}
type Tap = Parameters<typeof startTestCloud>[0];

t.test('an upload is stored with its size and sha256; a version is unique', async (t) => {
  const cloud = await startTestCloud(t);
  const bytes = bundleBytes(1);
  const res = await upload(cloud, '2025.02.1', bytes);
  t.equal(res.status, 201, res.raw.toString());
  t.equal(res.body.bytes, bytes.length);
  t.equal(res.body.sha256, sha256(bytes));
  t.equal(res.body.verified, false, 'no keyring: the release says it was not checked');
  const again = await upload(cloud, '2025.02.1', bundleBytes(2));
  t.equal(again.status, 409);
  t.equal(again.body.code, 'VERSION_EXISTS');
  const list = await http(cloud.url, 'GET', '/admin/v1/firmware/releases', { token: cloud.adminToken });
  t.same(list.body.map((r: { version: string; sha256: string }) => [r.version, r.sha256]), [['2025.02.1', sha256(bytes)]]);
  t.same((await cloud.folder.listFiles()).filter((f) => f.startsWith('firmware/')), [`firmware/${res.body.id}.raucb`], 'only the kept bundle is stored');
});

t.test('the bundle size limit and media type are enforced', async (t) => {
  const cloud = await startTestCloud(t, { maxBundleBytes: 1000 });
  const big = await upload(cloud, 'v1', bundleBytes(1, 1001));
  t.equal(big.status, 413);
  const wrongType = await http(cloud.url, 'POST', '/admin/v1/firmware/releases?version=v1', { token: cloud.adminToken, body: bundleBytes(1, 10), headers: { 'content-type': 'text/plain' } });
  t.equal(wrongType.status, 415);
  const noAdmin = await http(cloud.url, 'POST', '/admin/v1/firmware/releases?version=v1', { body: bundleBytes(1, 10), headers: OCTETS });
  t.equal(noAdmin.status, 401);
  t.equal((await upload(cloud, 'v1', bundleBytes(1, 1000))).status, 201);
});

const hasRauc = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v rauc && command -v mksquashfs && command -v openssl'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

t.test('with a keyring, only bundles signed for it are kept', { skip: hasRauc ? false : 'rauc, mksquashfs or openssl not installed' }, async (t) => {
  const dir = tempDir(t);
  const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { cwd: dir, stdio: 'pipe' });
  sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'ca.pem', '-subj', '/CN=vigil-test', '-days', '2']);
  sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other-key.pem', '-out', 'other.pem', '-subj', '/CN=someone-else', '-days', '2']);
  mkdirSync(join(dir, 'in'));
  writeFileSync(join(dir, 'in/manifest.raucm'), '[update]\ncompatible=vigil-test\nversion=2025.02.1\n\n[image.rootfs]\nfilename=rootfs.img\n');
  writeFileSync(join(dir, 'in/rootfs.img'), bundleBytes(3, 8192));
  sh('rauc', ['bundle', '--cert=ca.pem', '--key=key.pem', 'in', 'good.raucb']);
  sh('rauc', ['bundle', '--cert=other.pem', '--key=other-key.pem', 'in', 'other.raucb']);
  const good = readFileSync(join(dir, 'good.raucb'));
  const tampered = Buffer.from(good);
  tampered[100] = (tampered[100]! ^ 0xff) & 255; // inside the signed squashfs

  const cloud = await startTestCloud(t, { firmwareKeyring: join(dir, 'ca.pem') });
  for (const [name, body] of [
    ['not a bundle', bundleBytes(1)],
    ['tampered', tampered],
    ['signed by another CA', readFileSync(join(dir, 'other.raucb'))],
  ] as const) {
    const res = await upload(cloud, 'v-bad', body);
    t.equal(res.status, 422, name);
    t.equal(res.body.code, 'BUNDLE_SIGNATURE_INVALID', name);
  }
  t.same((await cloud.folder.listFiles()).filter((f) => f.startsWith('firmware/')), [], 'refused bundles are not kept');
  t.same(await cloud.store.firmware.listReleases(), []);
  const ok = await upload(cloud, 'v-good', good);
  t.equal(ok.status, 201, ok.raw.toString());
  t.equal(ok.body.verified, true);
  t.equal(ok.body.sha256, sha256(good));
});

t.test('a keyring that does not exist is a configuration error', async (t) => {
  await t.rejects(startTestCloud(t, { firmwareKeyring: '/nonexistent/ca.pem' }), /firmwareKeyring: no such file/);
});

t.test('the target has a strong ETag; If-None-Match gets 304 until it changes', async (t) => {
  const { cloud, devs, releaseId, deploymentId, bytes } = await rollout(t, 1);
  const first = await target(cloud, devs[0]!.token);
  t.equal(first.status, 200);
  t.same(first.body, { release: { id: releaseId, version: '2025.02.1', bytes: bytes.length, sha256: sha256(bytes), url: `/v1/firmware/releases/${releaseId}/bundle` }, deploymentId });
  const etag = String(first.headers.etag);
  t.match(etag, /^"[^"]+"$/, 'strong');
  const again = await target(cloud, devs[0]!.token, { 'if-none-match': etag });
  t.equal(again.status, 304);
  t.equal(again.raw.length, 0);
  t.equal((await target(cloud, devs[0]!.token, { 'if-none-match': '"other"' })).status, 200);
  // Committed: the answer changes, so the old ETag no longer matches.
  t.equal((await status(cloud, devs[0]!.token, { deploymentId, releaseId, version: '2025.02.1', state: 'committed', reason: null, at: 1 })).status, 200);
  const after = await target(cloud, devs[0]!.token, { 'if-none-match': etag });
  t.equal(after.status, 200);
  t.same(after.body, { release: null, deploymentId: null });
  t.not(after.headers.etag, etag);
});

t.test('bundle download: whole, Range 206, 416 out of range, If-Range mismatch 200', async (t) => {
  const { cloud, devs, releaseId, bytes } = await rollout(t, 2, { maxConcurrent: 1 });
  const url = `/v1/firmware/releases/${releaseId}/bundle`;
  const a = devs[0]!;
  const b = devs[1]!;
  t.equal((await http(cloud.url, 'GET', url, { token: a.token })).status, 404, 'not yet told to update');
  await target(cloud, a.token);
  t.equal((await http(cloud.url, 'GET', url, { token: b.token })).status, 404, 'waiting for a slot: not told yet');

  const whole = await http(cloud.url, 'GET', url, { token: a.token });
  t.equal(whole.status, 200);
  t.ok(whole.raw.equals(bytes), 'every byte');
  t.equal(whole.headers['accept-ranges'], 'bytes');
  const etag = String(whole.headers.etag);
  t.equal(etag, `"${sha256(bytes)}"`);

  const part = await http(cloud.url, 'GET', url, { token: a.token, headers: { range: 'bytes=1234-', 'if-range': etag } });
  t.equal(part.status, 206);
  t.equal(part.headers['content-range'], `bytes 1234-${bytes.length - 1}/${bytes.length}`);
  t.ok(part.raw.equals(bytes.subarray(1234)), 'exactly the rest');

  const last = await http(cloud.url, 'GET', url, { token: a.token, headers: { range: `bytes=${bytes.length - 1}-` } });
  t.equal(last.status, 206);
  t.ok(last.raw.equals(bytes.subarray(bytes.length - 1)));

  const beyond = await http(cloud.url, 'GET', url, { token: a.token, headers: { range: `bytes=${bytes.length}-` } });
  t.equal(beyond.status, 416);
  t.equal(beyond.headers['content-range'], `bytes */${bytes.length}`);

  const stale = await http(cloud.url, 'GET', url, { token: a.token, headers: { range: 'bytes=1234-', 'if-range': '"an-older-bundle"' } });
  t.equal(stale.status, 200, 'another validator: the whole file');
  t.ok(stale.raw.equals(bytes));
});

t.test('a staged rollout: at most maxConcurrent in progress; a commit frees a slot', async (t) => {
  const { cloud, devs, releaseId, deploymentId } = await rollout(t, 5, { maxConcurrent: 2 });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies read loosely
  const answers: any[] = [];
  for (const d of devs) answers.push((await target(cloud, d.token)).body);
  const told = devs.filter((_, i) => answers[i].release !== null);
  t.equal(told.length, 2, 'only two get the release');
  t.same(answers.slice(2), [{ release: null, deploymentId: null }, { release: null, deploymentId: null }, { release: null, deploymentId: null }]);
  // Asking again changes nothing.
  t.equal((await target(cloud, devs[2]!.token)).body.release, null);
  t.not((await target(cloud, devs[0]!.token)).body.release, null, 'in progress: still told');

  const s = { deploymentId, releaseId, version: '2025.02.1', reason: null, at: 1 };
  t.equal((await status(cloud, devs[0]!.token, { ...s, state: 'trial' })).status, 200);
  t.equal((await target(cloud, devs[2]!.token)).body.release, null, 'a trial boot still holds its slot');
  t.equal((await status(cloud, devs[0]!.token, { ...s, state: 'committed' })).status, 200);
  t.equal((await target(cloud, devs[2]!.token)).body.release?.id, releaseId, 'the commit freed a slot');
  t.equal((await target(cloud, devs[3]!.token)).body.release, null, 'and only one');

  const d = await http(cloud.url, 'GET', `/admin/v1/firmware/deployments/${deploymentId}`, { token: cloud.adminToken });
  t.same(d.body.devices.map((x: { state: string }) => x.state), ['committed', 'started', 'started', 'waiting', 'waiting']);
  t.equal(d.body.state, 'active');
});

t.test('a failure at threshold 1 halts the deployment: nobody new starts, the reason is kept', async (t) => {
  const { cloud, devs, releaseId, deploymentId } = await rollout(t, 4, { maxConcurrent: 2 });
  await target(cloud, devs[0]!.token);
  await target(cloud, devs[1]!.token);
  const s = { deploymentId, releaseId, version: '2025.02.1', at: 1 };
  t.equal((await status(cloud, devs[0]!.token, { ...s, state: 'reverted', reason: 'no upload acknowledged within 600 s of the trial boot' })).status, 200);
  const d = await http(cloud.url, 'GET', `/admin/v1/firmware/deployments/${deploymentId}`, { token: cloud.adminToken });
  t.equal(d.body.state, 'halted');
  t.match(d.body.haltReason, /1 device\(s\) failed or reverted.*reverted: no upload acknowledged/);
  t.equal(d.body.devices[0].reason, 'no upload acknowledged within 600 s of the trial boot');
  t.equal((await target(cloud, devs[2]!.token)).body.release, null, 'a slot is free, but the deployment is halted');
  t.equal((await target(cloud, devs[3]!.token)).body.release, null);
  t.equal((await target(cloud, devs[1]!.token)).body.release?.id, releaseId, 'one already under way may finish');
});

t.test('with threshold 2 one failure does not halt; an admin can halt', async (t) => {
  const { cloud, devs, releaseId, deploymentId } = await rollout(t, 3, { maxConcurrent: 1, failureThreshold: 2 });
  await target(cloud, devs[0]!.token);
  await status(cloud, devs[0]!.token, { deploymentId, releaseId, version: '2025.02.1', state: 'failed', reason: 'bad slot', at: 1 });
  t.equal((await target(cloud, devs[1]!.token)).body.release?.id, releaseId, 'still rolling out');
  const h = await http(cloud.url, 'POST', `/admin/v1/firmware/deployments/${deploymentId}/halt`, { token: cloud.adminToken });
  t.equal(h.status, 200);
  t.equal(h.body.haltReason, 'halted by an admin');
  await status(cloud, devs[1]!.token, { deploymentId, releaseId, version: '2025.02.1', state: 'committed', reason: null, at: 2 });
  t.equal((await target(cloud, devs[2]!.token)).body.release, null, 'halted: nobody new starts');
});

t.test("another device's token cannot touch this device's rollout", async (t) => {
  const { cloud, devs, releaseId, deploymentId } = await rollout(t, 1);
  const outsider = await claimDevice(cloud, 'hw-outsider');
  await target(cloud, devs[0]!.token);
  const res = await status(cloud, outsider.token, { deploymentId, releaseId, version: '2025.02.1', state: 'failed', reason: 'mischief', at: 1 });
  t.equal(res.status, 404);
  t.equal(res.body.code, 'DEPLOYMENT_NOT_FOUND');
  const d = await http(cloud.url, 'GET', `/admin/v1/firmware/deployments/${deploymentId}`, { token: cloud.adminToken });
  t.same(d.body.devices.map((x: { state: string; reason: string | null }) => [x.state, x.reason]), [['started', null]]);
  t.equal(d.body.state, 'active');
  t.equal((await http(cloud.url, 'GET', `/v1/firmware/releases/${releaseId}/bundle`, { token: outsider.token })).status, 404, 'nor download its bundle');
});
