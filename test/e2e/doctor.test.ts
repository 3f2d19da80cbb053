// `vigil-agent doctor` as a technician runs it, beside the running agent: the built CLI, the
// real cloud, the real RTSP test camera, ffmpeg. A healthy site exits 0 with a JPEG per camera;
// a dead or hung camera, or a cloud that is gone, exits 1 with that check FAIL and every other
// check still reported.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { startTestCloud } from '../helpers/cloud.js';
import { startRtspCamera, startSilentCamera } from '../helpers/rtsp-camera.js';
import { startAgentProcess, writeAgentConfig, type AgentProcess } from '../helpers/agent-process.js';
import { tmpDir, type Teardown } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';

interface Finding {
  check: string;
  level: 'ok' | 'warn' | 'fail' | 'skip';
  fact: string;
  todo: string | null;
  data: Record<string, unknown>;
}
interface Report {
  at: number;
  status: 'ok' | 'attention';
  checks: Finding[];
}

const CHECKS = ['cameras', 'frame', 'cloud', 'token', 'card', 'clock', 'queue', 'dead_letters', 'firmware', 'update', 'disk'];

/** A device's data dir and config: firmware release file, slot, an NTP tool that says synced. */
function deviceConfig(dataDir: string, config: Record<string, unknown>): string {
  const release = join(dataDir, 'release');
  writeFileSync(release, 'VIGIL_FIRMWARE_VERSION=1.4.2\nVIGIL_FIRMWARE_BUILD_EPOCH=1700000000\n');
  const cmdline = join(dataDir, 'cmdline');
  writeFileSync(cmdline, 'console=ttyAMA0 vigil.slot=b rootwait\n');
  return writeAgentConfig(dataDir, {
    // Short timeouts: the test's dead cameras must not keep it waiting
    captureTimeoutMs: 5_000,
    rtspTimeoutMs: 3_000,
    update: { enabled: false },
    system: {
      releaseFile: release,
      cmdlineFile: cmdline,
      trybootFile: join(dataDir, 'no-tryboot'),
      clockStatusCommand: ['printf', 'Reference ID    : C0A80001\nLeap status     : Normal\n'],
    },
    ...config,
  });
}

/** Claims the device through the CLI, as a technician would. */
async function claim(t: Teardown, config: string, code: string): Promise<void> {
  const p = startAgentProcess(t, config, {}, ['claim', '--code', code]);
  const exit = await p.exited;
  if (exit.code !== 0) throw new Error(`claim exited ${exit.code}: ${p.logs.map((l) => l.msg).join(' | ')}`);
}

async function doctor(t: Teardown, config: string, framesDir: string, json = true): Promise<{ code: number | null; ms: number; report: Report | null; out: AgentProcess['logs'] }> {
  const t0 = Date.now();
  const p = startAgentProcess(t, config, {}, ['doctor', '--frames', framesDir, ...(json ? ['--json'] : [])]);
  const exit = await p.exited;
  const report = (p.logs.find((l) => 'checks' in l) as unknown as Report | undefined) ?? null;
  return { code: exit.code, ms: Date.now() - t0, report, out: p.logs };
}

const byCheck = (r: Report, check: string): Finding[] => r.checks.filter((c) => c.check === check);
const one = (r: Report, check: string): Finding => byCheck(r, check)[0]!;
const frameOf = (r: Report, camera: string): Finding => r.checks.find((c) => c.check === 'frame' && c.data.camera === camera)!;

function checkJpeg(t: Test, path: string, what: string): Buffer {
  const buf = readFileSync(path);
  t.same([buf[0], buf[1]], [0xff, 0xd8], `${what}: starts with the JPEG SOI marker`);
  t.same([buf.at(-2), buf.at(-1)], [0xff, 0xd9], `${what}: ends with the EOI marker`);
  return buf;
}

t.test('a healthy site: exit 0, a fresh JPEG per camera, every check reported', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1:ball', '/cam2:smpte'], size: '1280x720' });
  const dataDir = await tmpDir(t);
  const framesDir = join(dataDir, 'frames-today');
  const config = deviceConfig(dataDir, {
    cloudUrl: cloud.url,
    deviceName: 'shop-front',
    cameras: [
      { id: 'cam1', name: 'Front door', url: camera.url('/cam1') },
      { id: 'cam2', name: 'Till', url: camera.url('/cam2') },
    ],
  });
  // The agent runs, as on site: claimed, capturing and uploading; the doctor runs beside it
  const agent = startAgentProcess(t, config, { VIGIL_CLAIM_CODE: await cloud.claimCode('healthy-site') });
  await agent.waitForLog((l) => l.msg === 'device claimed', 20_000);
  await agent.waitForLog((l) => l.msg === 'capture ok', 20_000);

  const r = await doctor(t, config, framesDir);
  t.equal(r.code, 0, `exit 0 (${r.ms} ms)`);
  const report = r.report!;
  t.ok(report, 'a JSON report on standard output');
  t.equal(report.status, 'ok');
  t.same([...new Set(report.checks.map((c) => c.check))].sort(), [...CHECKS].sort(), 'every check is in the report');
  t.same(report.checks.filter((c) => c.level !== 'ok').map((c) => `${c.check}: ${c.fact}`), [], 'every check is OK');
  t.match(one(report, 'cameras').data, { cameras: [{ camera: 'cam1', name: 'Front door', source: 'config', address: `127.0.0.1:${camera.port}`, lastError: null }, { camera: 'cam2' }] });
  for (const cam of ['cam1', 'cam2']) {
    const f = frameOf(report, cam);
    t.match(f, { level: 'ok', data: { ok: true, path: join(framesDir, `${cam}.jpg`), via: 'rtsp' } }, `${cam}: a fresh frame`);
    const buf = checkJpeg(t, f.data.path as string, cam);
    t.equal(f.data.bytes, buf.length, `${cam}: the size reported is the file's`);
    t.ok((f.data.captureMs as number) > 0 && (f.data.capturedAt as number) >= report.at, `${cam}: capture time reported`);
    const meta = await sharp(buf).metadata();
    t.same([meta.format, meta.width, meta.height], ['jpeg', 1280, 720], `${cam}: decodes as a full-resolution frame`);
  }
  t.match(one(report, 'cloud'), { level: 'ok', data: { url: cloud.url, reachable: true } });
  t.match(one(report, 'token'), { level: 'ok', data: { valid: true, device: { site: 'healthy-site' } } }, 'the token is accepted by the cloud');
  t.match(one(report, 'clock'), { level: 'ok', data: { state: 'synced' } });
  t.match(one(report, 'queue'), { level: 'ok', data: { depth: Number } }, "the running agent's queue, read beside it");
  t.match(one(report, 'dead_letters'), { data: { count: 0 } });
  t.match(one(report, 'firmware'), { level: 'ok', data: { version: '1.4.2', slot: 'B', trial: false } });
  t.match(one(report, 'update'), { level: 'ok', data: { update: null } });
  t.match(one(report, 'disk').data, { dataDir, freeBytes: Number, totalBytes: Number });

  // The same, for a person: one line per check, then the verdict
  const text = await doctor(t, config, framesDir, false);
  t.equal(text.code, 0);
  const lines = text.out.map((l) => l.msg);
  t.match(lines[0], /^vigil-agent doctor, \d{4}-/);
  for (const c of CHECKS) t.ok(lines.some((l) => new RegExp(`^OK\\s+${c}\\s`).test(l)), `a line "OK ${c}"`);
  t.match(lines.at(-1), /^ALL WELL/);
  t.equal((await agent.stop()).code, 0, 'the agent ran on undisturbed and stops cleanly');
});

t.test('a dead camera and a hung one: exit 1, each FAIL with its reason, the rest still reported', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1'] });
  const silent = await startSilentCamera(t);
  const deadPort = await freePort();
  const dataDir = await tmpDir(t);
  const framesDir = join(dataDir, 'frames');
  const config = deviceConfig(dataDir, {
    cloudUrl: cloud.url,
    cameras: [
      { id: 'live', url: camera.url('/cam1') },
      { id: 'dead', name: 'Yard', url: `rtsp://127.0.0.1:${deadPort}/cam` },
      // ffmpeg's socket timeout is longer than the hard one: the wall-clock kill ends it
      { id: 'hung', url: silent.url(), captureTimeoutMs: 2_000 },
    ],
  });
  await claim(t, config, await cloud.claimCode('dead-camera'));
  // A frame left from an earlier visit must not pass for today's
  mkdirSync(framesDir, { recursive: true });
  writeFileSync(join(framesDir, 'dead.jpg'), 'a frame from last week');
  const r = await doctor(t, config, framesDir);
  t.equal(r.code, 1, 'exit 1: something needs attention');
  const report = r.report!;
  t.equal(report.status, 'attention');
  t.ok(r.ms < 15_000, `done in ${r.ms} ms: the hung camera was cut off at its timeout`);
  t.match(frameOf(report, 'live'), { level: 'ok', data: { ok: true } }, 'the live camera still gives its frame');
  checkJpeg(t, join(framesDir, 'live.jpg'), 'live');
  const dead = frameOf(report, 'dead');
  t.match(dead, { level: 'fail', fact: /Yard/, data: { ok: false, error: { code: 'CAPTURE_FAILED', message: /Connection refused/ } } }, 'the dead camera: FAIL, connection refused');
  t.match(dead.todo, /powered and connected/, 'with what to do about it');
  t.notOk(existsSync(join(framesDir, 'dead.jpg')), "the old frame of the dead camera is gone");
  const hung = frameOf(report, 'hung');
  t.match(hung, { level: 'fail', data: { ok: false, error: { code: 'CAPTURE_TIMEOUT', message: /no frame within 2000 ms/ } } }, 'the hung camera: FAIL at its hard timeout');
  t.equal(silent.open, 0, "the hung camera's connection was closed (ffmpeg killed)");
  t.same(byCheck(report, 'frame').map((f) => f.data.camera), ['live', 'dead', 'hung'], 'one frame check per camera, in order');
  for (const c of ['cloud', 'token', 'clock', 'queue', 'firmware', 'disk']) t.equal(one(report, c).level, 'ok', `${c} still checked: OK`);
  const failed = report.checks.filter((c) => c.level === 'fail').map((c) => `${c.check}:${String(c.data.camera)}`);
  t.same(failed, ['frame:dead', 'frame:hung'], 'only the two cameras fail');
});

t.test('an unreachable cloud: exit 1, cloud FAIL, the token not checkable', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1'] });
  const dataDir = await tmpDir(t);
  const config = deviceConfig(dataDir, { cloudUrl: cloud.url, cameras: [{ id: 'cam1', url: camera.url('/cam1') }] });
  await claim(t, config, await cloud.claimCode('cloud-gone'));
  await cloud.close(); // its loopback port is now closed

  const r = await doctor(t, config, join(dataDir, 'frames'));
  t.equal(r.code, 1, 'exit 1');
  const report = r.report!;
  t.match(one(report, 'cloud'), { level: 'fail', data: { url: cloud.url, reachable: false, error: { code: 'CLOUD_UNREACHABLE', message: /ECONNREFUSED/ } } });
  t.match(one(report, 'cloud').todo, /network cable.*internet/);
  t.match(one(report, 'token'), { level: 'skip', fact: /not checked/, data: { stored: true, valid: null, checked: false } }, 'the stored token is reported as not checkable');
  t.match(frameOf(report, 'cam1'), { level: 'ok' }, 'the camera is still checked');
  for (const c of CHECKS) t.ok(byCheck(report, c).length > 0, `${c} reported`);

  const text = await doctor(t, config, join(dataDir, 'frames'), false);
  t.equal(text.code, 1);
  const lines = text.out.map((l) => l.msg);
  t.ok(lines.some((l) => /^FAIL\s+cloud\s/.test(l)), 'a FAIL line for the cloud');
  t.ok(lines.some((l) => /^SKIP\s+token\s+not checked/.test(l)), 'a SKIP line for the token');
  t.match(lines.at(-1), /^NEEDS ATTENTION: 1 check failed/);
});

t.test('Ctrl-C: running captures are killed and what was found is still printed', async (t) => {
  const silent = await startSilentCamera(t);
  const dataDir = await tmpDir(t);
  const config = deviceConfig(dataDir, {
    cloudUrl: `http://127.0.0.1:${await freePort()}`,
    rtspTimeoutMs: 120_000,
    cameras: [{ id: 'hung', url: silent.url(), captureTimeoutMs: 120_000 }],
  });
  const p = startAgentProcess(t, config, {}, ['doctor', '--frames', join(dataDir, 'frames')]);
  await waitFor(() => silent.open > 0, 10_000, 'ffmpeg connected to the hung camera');
  const t0 = Date.now();
  p.child.kill('SIGINT');
  const exit = await p.exited;
  t.equal(exit.code, 1, `exit 1 ${Date.now() - t0} ms after the signal`);
  t.ok(Date.now() - t0 < 5_000, 'at once, not at the 120 s timeout');
  const lines = p.logs.map((l) => l.msg);
  t.ok(lines.some((l) => /^FAIL\s+frame\s+hung: .*CAPTURE_ABORTED/.test(l)), 'the interrupted capture is reported');
  t.ok(lines.some((l) => /^FAIL\s+cloud\s/.test(l)) && lines.some((l) => /^OK\s+disk\s/.test(l)), 'with the other checks');
  await waitFor(() => silent.open === 0, 5_000, "the hung camera's connection closed: ffmpeg is gone");
});

t.test('a bad command line exits 2, a bad config 78', async (t) => {
  const dataDir = await tmpDir(t);
  const config = deviceConfig(dataDir, { cloudUrl: 'http://127.0.0.1:9' });
  t.equal((await startAgentProcess(t, config, {}, ['doctor', '--frame', 'x']).exited).code, 2, 'an unknown option: 2');
  const bad = writeAgentConfig(join(dataDir, 'bad'), { cloudUrl: 'not a url' });
  t.equal((await startAgentProcess(t, bad, {}, 'doctor').exited).code, 78, 'an invalid config: 78, as for every command');
});
