// The discovery section of the config (defaults, validation naming the option, env overrides)
// and the `camera-credentials` CLI command against the built CLI.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseConfig } from '../src/config.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const base = { cloudUrl: 'http://127.0.0.1:1' };

t.test('defaults', async (t) => {
  const c = parseConfig(base);
  t.same(c.discovery, { enabled: true, intervalMs: 300_000, probeWaitMs: 3_000, callTimeoutMs: 5_000, lostAfterRounds: 3, queryConcurrency: 4, passwordText: true });
  t.equal(c.cameraCredentials, undefined);
  const sweep = parseConfig({ ...base, discovery: { sweep: { cidr: '192.168.1.0/24' } } }).discovery.sweep;
  t.same(sweep, { cidr: '192.168.1.0/24', maxHosts: 256, concurrency: 16, hostWaitMs: 1_000, timeoutMs: 30_000 });
});

t.test('bad values name the option', async (t) => {
  t.throws(() => parseConfig({ ...base, discovery: { interfaceAddress: 'eth0' } }), /discovery\.interfaceAddress: must be an IPv4 address/);
  t.throws(() => parseConfig({ ...base, discovery: { sweep: { cidr: '10.0.0.0/16' } } }), /discovery\.sweep\.cidr: 10\.0\.0\.0\/16 has 65534 hosts, more than sweep\.maxHosts \(256\)/);
  t.throws(() => parseConfig({ ...base, discovery: { sweep: { cidr: 'lan' } } }), /discovery\.sweep\.cidr: must be an IPv4 subnet/);
  t.throws(() => parseConfig({ ...base, discovery: { intervalMs: 0 } }), /discovery\.intervalMs/);
  t.throws(() => parseConfig({ ...base, discovery: { probe: 1 } }), /discovery: Unrecognized key/);
  t.throws(() => parseConfig({ ...base, cameraCredentials: { default: { username: '', password: 'x' } } }), /cameraCredentials\.default\.username/);
});

t.test('environment overrides', async (t) => {
  const c = loadConfig({ env: { VIGIL_CLOUD_URL: 'http://127.0.0.1:1', VIGIL_DISCOVERY_ENABLED: 'false', VIGIL_DISCOVERY_INTERFACE: '10.1.2.3' } });
  t.equal(c.discovery.enabled, false);
  t.equal(c.discovery.interfaceAddress, '10.1.2.3');
  const j = loadConfig({ env: { VIGIL_CLOUD_URL: 'http://127.0.0.1:1', VIGIL_DISCOVERY: '{"intervalMs": 60000}' } });
  t.equal(j.discovery.intervalMs, 60_000);
});

function cli(args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

t.test('vigil-agent camera-credentials: set, list, remove; the password never lands in clear', async (t) => {
  const dir = t.testdir({ serial: '10000000c0ffee00\n' });
  const config = join(dir, 'agent.json');
  writeFileSync(config, JSON.stringify({ ...base, dataDir: join(dir, 'data'), serialSources: [join(dir, 'serial')] }));
  const secret = 'camera pass with spaces ';
  let r = await cli(['camera-credentials', '--config', config, '--username', 'admin'], `${secret}\n`);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /stored for the site default/);
  r = await cli(['camera-credentials', '--config', config, '--camera', '00:11:22:AA:BB:CC', '--username', 'door'], 'door-pass');
  t.match(r.stdout, /stored for camera mac-001122aabbcc/);
  r = await cli(['camera-credentials', '--config', config, '--list']);
  t.same(JSON.parse(r.stdout), [
    { scope: 'default', username: 'admin' },
    { scope: 'mac-001122aabbcc', username: 'door' },
  ]);
  t.notMatch(r.stdout, /pass/, 'no passwords listed');
  for (const f of readdirSync(join(dir, 'data'))) {
    t.notOk(readFileSync(join(dir, 'data', f)).includes(Buffer.from('camera pass')), `no password in ${f}`);
  }
  r = await cli(['camera-credentials', '--config', config, '--camera', 'mac-001122aabbcc', '--remove']);
  t.equal(r.code, 0);
  r = await cli(['camera-credentials', '--config', config, '--camera', 'mac-001122aabbcc', '--remove']);
  t.equal(r.code, 1, 'nothing to remove');
  r = await cli(['camera-credentials', '--config', config, '--username', 'admin'], '');
  t.equal(r.code, 78);
  t.match(r.stderr, /no password on standard input/);
  r = await cli(['camera-credentials', '--config', config, '--camera', 'not ok!', '--username', 'x'], 'p');
  t.equal(r.code, 78);
  t.match(r.stderr, /--camera: "not ok!" is neither a camera key/);
});
