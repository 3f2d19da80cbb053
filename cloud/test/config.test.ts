import t from 'tap';
import { CONFIG_FLAGS, loadConfig, MIB } from '../src/config.js';
import { runCli, parseTtl } from '../src/cli-commands.js';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { tempDir, startTestCloud, http, realClock } from './helpers.js';

t.test('defaults', async (t) => {
  const c = loadConfig({ env: {} });
  t.match(c, {
    host: '127.0.0.1',
    port: 8080,
    maxObjectBytes: 20 * MIB,
    presignTtlS: 900,
    deviceRateLimit: 1200,
    rateLimitWindowMs: 60_000,
    logLevel: 'info',
  });
  t.equal(c.adminToken, undefined);
});

t.test('env, then flags, then overrides', async (t) => {
  const env = { VIGIL_CLOUD_PORT: '9000', VIGIL_CLOUD_DATA_DIR: '/tmp/x', VIGIL_ADMIN_TOKEN: 'a'.repeat(20), VIGIL_MAX_OBJECT_BYTES: '1000' };
  const c = loadConfig({ env, flags: { port: '9001' }, overrides: { presignTtlS: 5 } });
  t.match(c, { port: 9001, dataDir: '/tmp/x', adminToken: 'a'.repeat(20), maxObjectBytes: 1000, presignTtlS: 5 });
});

t.test('a bad value names the option it came from', async (t) => {
  t.throws(() => loadConfig({ env: { VIGIL_CLOUD_PORT: 'eighty' } }), { code: 'CONFIG_INVALID', message: /VIGIL_CLOUD_PORT: "eighty" is not a number/ });
  t.throws(() => loadConfig({ env: {}, flags: { port: '70000' } }), { message: /--port/ });
  t.throws(() => loadConfig({ env: { VIGIL_ADMIN_TOKEN: 'short' } }), { message: /VIGIL_ADMIN_TOKEN: must be at least 16/ });
  t.throws(() => loadConfig({ env: { VIGIL_CLOUD_PUBLIC_URL: 'ftp://x' } }), { message: /VIGIL_CLOUD_PUBLIC_URL: must be an http/ });
  t.throws(() => loadConfig({ env: {}, overrides: { maxObjectBytes: -1 } }), { message: /maxObjectBytes/ });
  t.throws(() => loadConfig({ env: {}, overrides: { nope: 1 } as never }), { message: /nope/ });
});

t.test('generated secrets are private to the owner', async (t) => {
  const cloud = await startTestCloud(t);
  for (const f of ['admin-token', 'url-signing-key']) t.equal(statSync(join(cloud.dataDir, f)).mode & 0o777, 0o600, f);
});

t.test('cli: claim-code and revoke work on the data dir, beside a running server', async (t) => {
  // The CLI stamps codes with the real clock, so this cloud runs on it too.
  const cloud = await startTestCloud(t, {}, realClock());
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
  // The CLI works on the cloud's database: the data dir's file, or PostgreSQL when the suite runs there.
  const env = { VIGIL_CLOUD_DATA_DIR: cloud.dataDir, ...(cloud.config.databaseUrl ? { VIGIL_DATABASE_URL: cloud.config.databaseUrl } : {}) };

  t.equal(await runCli(['claim-code', '--site', 'Depot', '--ttl', '2h'], io, env), 0);
  const code = out.pop()!;
  t.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  t.match(err.pop(), /Depot/);
  const claim = await http(cloud.url, 'POST', '/v1/claim', { json: { code, hardwareId: 'hw-cli' } });
  t.equal(claim.status, 200, 'the server accepts a code the CLI wrote');
  t.equal(await runCli(['revoke', '--device', claim.body.deviceId], io, env), 0);
  t.equal((await http(cloud.url, 'GET', '/v1/device', { token: claim.body.token })).status, 401, 'revoked by the CLI');

  const sites = await cloud.store.listSites();
  t.same(sites.map((s) => s.name), ['Depot']);

  t.equal(await runCli(['revoke', '--device', 'dev_nope'], io, env), 1);
  t.match(err.pop(), /no device/);
  await t.rejects(runCli(['claim-code'], io, env), { code: 'CONFIG_INVALID', message: /--site/ });
  await t.rejects(runCli(['frobnicate'], io, env), { message: /unknown command/ });
  t.equal(await runCli(['--help'], io, env), 0);
});

t.test('ttl parsing', async (t) => {
  t.equal(parseTtl('90'), 90);
  t.equal(parseTtl('30m'), 1800);
  t.equal(parseTtl('24h'), 86_400);
  t.equal(parseTtl('7d'), 604_800);
  t.throws(() => parseTtl('soon'), { message: /--ttl/ });
});

t.test('a data dir that is a file is a clear error', async (t) => {
  const dir = tempDir(t);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'file'), 'x');
  await t.rejects(startTestCloud(t, { dataDir: join(dir, 'file') }), { code: 'CONFIG_INVALID', message: /dataDir .*file/ });
});

t.test('fleet, webhook and triage options: defaults, env, flags, clear errors', async (t) => {
  const d = loadConfig({ env: {} });
  t.match(d, {
    fleetSweepIntervalS: 30,
    deviceSilentS: 300,
    cameraSilentS: 300,
    frozenFrames: 10,
    frozenMaxDistance: 16,
    backlogHeartbeats: 5,
    backlogMinAgeS: 300,
    webhookUrls: [],
    webhookTimeoutS: 10,
    webhookMaxAttempts: 10,
    triageTimeoutS: 30,
  });
  t.equal(d.triageBaseUrl, undefined);

  const env = {
    VIGIL_WEBHOOK_URLS: 'https://hooks.example/a, http://10.0.0.5:9000/b',
    VIGIL_WEBHOOK_SECRET: 's'.repeat(20),
    VIGIL_DEVICE_SILENT_S: '120',
    VIGIL_TRIAGE_BASE_URL: 'http://127.0.0.1:11434/v1',
    VIGIL_TRIAGE_MODEL: 'llama3.2',
    VIGIL_TRIAGE_API_KEY: 'sk-x',
  };
  const c = loadConfig({ env, flags: { 'frozen-frames': '4', 'fleet-sweep-interval-s': '5', 'triage-model': 'qwen2.5' } });
  t.match(c, {
    webhookUrls: ['https://hooks.example/a', 'http://10.0.0.5:9000/b'],
    deviceSilentS: 120,
    frozenFrames: 4,
    fleetSweepIntervalS: 5,
    triageModel: 'qwen2.5',
    triageApiKey: 'sk-x',
  });

  t.throws(() => loadConfig({ env: { VIGIL_WEBHOOK_URLS: 'ftp://x' } }), { code: 'CONFIG_INVALID', message: /VIGIL_WEBHOOK_URLS: each must be an http/ });
  t.throws(() => loadConfig({ env: { VIGIL_WEBHOOK_URLS: 'https://x/y' } }), { message: /webhookSecret: required when webhook URLs are set \(VIGIL_WEBHOOK_SECRET\)/ });
  t.throws(() => loadConfig({ env: { VIGIL_WEBHOOK_URLS: 'https://x/y', VIGIL_WEBHOOK_SECRET: 'short' } }), { message: /VIGIL_WEBHOOK_SECRET: must be at least 16/ });
  t.throws(() => loadConfig({ env: { VIGIL_TRIAGE_MODEL: 'm' } }), { message: /triageBaseUrl: triage needs both/ });
  t.throws(() => loadConfig({ env: {}, flags: { 'frozen-frames': '1' } }), { message: /--frozen-frames/ });
  t.throws(() => loadConfig({ env: {}, flags: { 'frozen-max-distance': '5000' } }), { message: /--frozen-max-distance/ });
  t.throws(() => loadConfig({ env: { VIGIL_BACKLOG_HEARTBEATS: '21' } }), { message: /VIGIL_BACKLOG_HEARTBEATS/ });
  t.throws(() => loadConfig({ env: { VIGIL_FLEET_SWEEP_INTERVAL_S: '0' } }), { message: /VIGIL_FLEET_SWEEP_INTERVAL_S/ });
  t.throws(() => loadConfig({ env: { VIGIL_TRIAGE_BASE_URL: 'not a url', VIGIL_TRIAGE_MODEL: 'm' } }), { message: /VIGIL_TRIAGE_BASE_URL: must be an http/ });
});

t.test('database and object store options: SQLite and the folder by default; PostgreSQL and S3 by env; clear errors', async (t) => {
  const d = loadConfig({ env: {} });
  t.equal(d.databaseUrl, undefined, 'SQLite in the data dir');
  t.equal(d.s3Bucket, undefined, 'the object folder');
  t.match(d, { databasePoolSize: 10, s3Region: 'us-east-1', jobLeaseS: 60 });

  const env = {
    VIGIL_DATABASE_URL: 'postgres://vigil:pw@db.internal:5432/vigil',
    VIGIL_S3_BUCKET: 'frames',
    VIGIL_S3_ENDPOINT: 'http://minio.internal:9000',
    VIGIL_S3_ACCESS_KEY_ID: 'AKIA1',
    VIGIL_S3_SECRET_ACCESS_KEY: 'secret1',
  };
  t.match(loadConfig({ env, flags: { 'database-pool-size': '20', 's3-url-style': 'virtual-host' } }), {
    databaseUrl: env.VIGIL_DATABASE_URL,
    databasePoolSize: 20,
    s3Bucket: 'frames',
    s3Endpoint: 'http://minio.internal:9000',
    s3UrlStyle: 'virtual-host',
    s3AccessKeyId: 'AKIA1',
    s3SecretAccessKey: 'secret1',
  });

  t.throws(() => loadConfig({ env: { VIGIL_DATABASE_URL: 'mysql://db/vigil' } }), { code: 'CONFIG_INVALID', message: /VIGIL_DATABASE_URL: must be a postgres:\/\/ URL/ });
  t.throws(() => loadConfig({ env: { VIGIL_S3_BUCKET: 'frames', VIGIL_S3_ACCESS_KEY_ID: 'AKIA1' } }), { message: /s3SecretAccessKey: S3 credentials need both/ });
  t.throws(() => loadConfig({ env: { VIGIL_S3_ENDPOINT: 'http://minio:9000' } }), { message: /s3Bucket: the S3 options need a bucket/ });
  t.throws(() => loadConfig({ env: { VIGIL_S3_BUCKET: 'frames', VIGIL_S3_URL_STYLE: 'dns' } }), { message: /VIGIL_S3_URL_STYLE/ });
  for (const secret of ['database-url', 's3-access-key-id', 's3-secret-access-key']) t.notOk(secret in CONFIG_FLAGS, `no --${secret} flag: env only`);
});
