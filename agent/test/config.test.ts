import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, parseConfig } from '../src/config.js';

const cam = { id: 'front', url: 'rtsp://10.0.0.5/stream1' };

t.test('defaults fill in around the required fields', async (t) => {
  const c = parseConfig({ cloudUrl: 'http://127.0.0.1:8080', cameras: [cam] });
  t.equal(c.captureIntervalMs, 30_000);
  t.equal(c.captureTimeoutMs, 120_000);
  t.equal(c.cameras[0]!.transport, 'tcp');
  t.equal(c.dataDir, '/data/vigil');
});

t.test('a bad value is an error that names the option', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ cameras: [] }, /cloudUrl/],
    [{ cloudUrl: 'ftp://x' }, /cloudUrl: must be an http\(s\) URL/],
    [{ cloudUrl: 'http://x', cameras: [{ id: 'a b', url: 'rtsp://x' }] }, /cameras\.0\.id/],
    [{ cloudUrl: 'http://x', cameras: [{ id: 'a', url: 'http://x' }] }, /cameras\.0\.url: must be an rtsp/],
    [{ cloudUrl: 'http://x', cameras: [cam, cam] }, /cameras\.1\.id: duplicate camera id "front"/],
    [{ cloudUrl: 'http://x', captureIntervalMs: -5 }, /captureIntervalMs/],
    [{ cloudUrl: 'http://x', captureIntervalMS: 5 }, /captureIntervalMS/],
  ];
  for (const [raw, re] of cases) t.throws(() => parseConfig(raw), { message: re }, String(re));
  t.throws(() => parseConfig({}), { code: 'CONFIG_INVALID', name: 'ConfigError' });
});

t.test('environment overrides the file', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'agent.json');
  writeFileSync(file, JSON.stringify({ cloudUrl: 'http://file:1', cameras: [cam] }));
  const c = loadConfig({ file, env: { VIGIL_CLOUD_URL: 'http://env:2', VIGIL_DATA_DIR: dir, VIGIL_CAPTURE_INTERVAL_MS: '5000' } });
  t.equal(c.cloudUrl, 'http://env:2');
  t.equal(c.dataDir, dir);
  t.equal(c.captureIntervalMs, 5000);
  t.throws(() => loadConfig({ file, env: { VIGIL_CAMERAS: '[' } }), /VIGIL_CAMERAS: not valid JSON/);
  writeFileSync(file, '{ nope');
  t.throws(() => loadConfig({ file, env: {} }), /config file .*agent\.json/);
});

t.test('health, supervision and watchdog: defaults, one field from the environment, bad values named', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'agent.json');
  writeFileSync(file, JSON.stringify({ cloudUrl: 'http://file:1', watchdog: { intervalMs: 2000 }, supervision: { camera: { maxRestarts: 5 } } }));
  const c = loadConfig({ file, env: { VIGIL_WATCHDOG_PATH: '/run/vigil/heartbeat' } });
  t.same(c.watchdog, { path: '/run/vigil/heartbeat', intervalMs: 2000, maxLagMs: 10_000 }, 'the env sets the path, the file the interval');
  t.same(c.supervision, { agent: { maxRestarts: 10, periodMs: 60_000 }, camera: { maxRestarts: 5, periodMs: 60_000 }, variants: { maxRestarts: 50, periodMs: 60_000 } });
  t.equal(c.health.intervalMs, 60_000);
  t.equal(c.heartbeatIntervalMs, 60_000);
  t.throws(() => parseConfig({ cloudUrl: 'http://x', supervision: { variants: { maxRestarts: 0 } } }), /supervision\.variants\.maxRestarts/);
  t.throws(() => parseConfig({ cloudUrl: 'http://x', health: { intervalMs: -1 } }), /health\.intervalMs/);
  t.throws(() => parseConfig({ cloudUrl: 'http://x', health: { typo: 1 } }), /health: Unrecognized key/);
});
