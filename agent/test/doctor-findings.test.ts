// The doctor's levels (which finding is FAIL, WARN, OK), its exit code and its text: the table
// behind docs/agent.md's "Doctor". The checks against real cameras and the cloud are in
// test/e2e/doctor.test.ts.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config.js';
import type { UploadQueue } from '../src/store/upload-queue.js';
import type { Stored as UpdateRecord } from '../src/update/updater.js';
import { CAPTURE_ERROR_RETRYABLE } from '../src/capture/capture-errors.js';
import { SNAPSHOT_ERROR_RETRYABLE } from '../src/capture/snapshot.js';
import { captureAdvice, camerasFinding, doctorCameras, freshFrame } from '../src/doctor/camera-checks.js';
import { cardFinding, clockFinding, diskFinding, firmwareFinding, queueFindings, updateFinding } from '../src/doctor/device-checks.js';
import { exitCode, finding, formatDuration, formatText, report } from '../src/doctor/findings.js';
import type { CameraRecord } from '../src/cameras/types.js';

const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);
const config = (extra: Record<string, unknown> = {}) => parseConfig({ cloudUrl: 'http://127.0.0.1:9', dataDir: tmpdir(), ...extra });
const fw = { version: '1.4.2', slot: 'A' as const, trial: false, builtAt: null };

t.test('exit code: 1 only when a check failed; WARN and SKIP leave it 0', async (t) => {
  const ok = finding('a', 'ok', 'fine');
  t.equal(exitCode(report(NOW, [ok, finding('b', 'warn', 'meh', 'look'), finding('c', 'skip', 'not checked', 'later')])), 0);
  t.equal(exitCode(report(NOW, [ok, finding('d', 'fail', 'broken', 'fix it')])), 1);
  t.equal(report(NOW, []).status, 'ok');
  t.equal(finding('a', 'ok', 'fine', 'ignored').todo, null, 'an OK finding has nothing to do');
});

t.test('text: one line per check, the remedy under anything not OK, the verdict last', async (t) => {
  const text = formatText(
    report(NOW, [finding('cloud', 'ok', 'answers'), finding('frame', 'fail', 'no picture: ffmpeg said\nConnection refused\n', 'check the cable')]),
  );
  const lines = text.split('\n');
  t.equal(lines.length, 5);
  t.match(lines[1], /^OK\s+cloud\s+answers$/);
  t.match(lines[2], /^FAIL\s+frame\s+no picture: ffmpeg said \| Connection refused/, "ffmpeg's lines joined into one");
  t.match(lines[3], /^\s+→ check the cable$/);
  t.equal(lines[4], 'NEEDS ATTENTION: 1 check failed');
  t.equal(formatText(report(NOW, [finding('clock', 'warn', 'x', 'y')])).split('\n').at(-1), 'ALL WELL (1 warning)');
});

t.test('queue: OK while young, WARN past health.maxQueueAgeMs; any dead letter is WARN', async (t) => {
  const queue = (ages: number[], dead: number) =>
    ({
      depth: () => ages.map((age, i) => ({ camera: `cam${i}`, variant: 'original', count: 3, oldestCapturedAt: NOW - age })),
      deadLetterCount: () => dead,
    }) as unknown as UploadQueue;
  const c = config({ health: { maxQueueAgeMs: 3_600_000 } });
  const levels = (ages: number[], dead: number) => queueFindings(c, queue(ages, dead), NOW).map((f) => f.level);
  t.same(levels([], 0), ['ok', 'ok']);
  t.same(levels([60_000, 120_000], 0), ['ok', 'ok']);
  t.same(levels([60_000, 2 * 3_600_000], 0), ['warn', 'ok'], 'one camera two hours behind');
  t.same(levels([], 4), ['ok', 'warn']);
  const [q] = queueFindings(c, queue([60_000, 7_200_000], 0), NOW);
  t.match(q!.data, { depth: 6, oldestAgeMs: 7_200_000 });
  t.match(q!.fact, /6 frames waiting to upload, the oldest 2 h 0 min old/);
});

t.test('update: in progress, failed and reverted are WARN; none and committed OK', async (t) => {
  const u = (state: UpdateRecord['state']): UpdateRecord => ({ releaseId: 'r1', version: '2.0.0', deploymentId: 'd1', state, reason: state === 'reverted' ? 'no upload within 600 s' : null, at: NOW - 60_000, unreported: false });
  t.equal(updateFinding(null, NOW).level, 'ok');
  const table: [UpdateRecord['state'], string][] = [
    ['committed', 'ok'],
    ['downloading', 'warn'],
    ['installing', 'warn'],
    ['trial', 'warn'],
    ['failed', 'warn'],
    ['reverted', 'warn'],
  ];
  for (const [state, level] of table) t.equal(updateFinding(u(state), NOW).level, level, state);
  t.match(updateFinding(u('reverted'), NOW).fact, /update to 2.0.0: reverted 1 min ago: no upload within 600 s/);
});

t.test('firmware: a release file and no trial is OK; none, or a trial boot, WARN', async (t) => {
  const c = config();
  t.equal(firmwareFinding(c, fw).level, 'ok');
  t.equal(firmwareFinding(c, { ...fw, version: null }).level, 'warn');
  t.equal(firmwareFinding(c, { ...fw, trial: true }).level, 'warn');
});

t.test('clock: synced OK; unsynced, behind the firmware build, or unknown WARN', async (t) => {
  const withCmd = (out: string) => config({ system: { clockStatusCommand: ['printf', out] } });
  t.equal((await clockFinding(withCmd('Leap status     : Normal\n'), fw, NOW)).level, 'ok');
  t.match(await clockFinding(withCmd('Leap status     : Not synchronised\n'), fw, NOW), { level: 'warn', data: { state: 'unsynced' } });
  t.match(await clockFinding(withCmd('Leap status     : Normal\n'), { ...fw, builtAt: NOW + 86_400_000 }, NOW), { level: 'warn', data: { state: 'unsynced' } }, 'a clock behind the build is not set');
  t.match(await clockFinding(config({ system: { clockStatusCommand: [] } }), fw, NOW), { level: 'warn', data: { state: 'unknown' } });
});

t.test('disk: unreadable FAIL, under health.minFreeDiskBytes WARN', async (t) => {
  t.equal((await diskFinding(config({ health: { minFreeDiskBytes: 0 } }))).level, 'ok');
  t.equal((await diskFinding(config({ health: { minFreeDiskBytes: Number.MAX_SAFE_INTEGER } }))).level, 'warn');
  t.equal((await diskFinding(config({ dataDir: join(tmpdir(), 'no-such-dir-for-the-doctor') }))).level, 'fail');
});

t.test('no camera at all is FAIL', async (t) => {
  t.equal(camerasFinding([]).level, 'fail');
});

t.test("cameras: the config's as configured now, discovered ones with the stored credentials; a lost one FAILs without a capture", async (t) => {
  const discovered = (key: string, o: Partial<CameraRecord>): CameraRecord => ({
    key, source: 'onvif', name: key, manufacturer: null, model: null, firmware: null, serial: null, mac: null, address: '10.0.0.8', xaddr: null,
    streamUri: 'rtsp://10.0.0.8/s1', snapshotUri: null, present: true, firstSeenAt: NOW, lastSeenAt: NOW, lastError: null, ...o,
  });
  const c = config({ cameras: [{ id: 'door', url: 'rtsp://10.0.0.5/s', username: 'u', password: 'p' }] });
  const creds = { forCamera: (cam: { key?: string | null }) => (cam.key === 'mac-001122aabbcc' ? { scope: cam.key, credentials: { username: 'admin', password: 'pw' } } : undefined) };
  const registry = [
    { ...discovered('door', {}), source: 'config' as const, address: 'stale' }, // the config file wins over the agent's last sync
    discovered('mac-001122aabbcc', {}),
    discovered('mac-0011223344ff', { present: false }),
  ];
  const cams = doctorCameras(c, registry, creds, NOW);
  t.same(cams.map((x) => [x.record.key, x.record.address]), [['door', '10.0.0.5'], ['mac-001122aabbcc', '10.0.0.8'], ['mac-0011223344ff', '10.0.0.8']]);
  t.match(cams[0]!.spec, { rtspUrl: 'rtsp://10.0.0.5/s', username: 'u', password: 'p' });
  t.match(cams[1]!.spec, { rtspUrl: 'rtsp://10.0.0.8/s1', username: 'admin', password: 'pw', capturePath: 'auto' });
  t.equal(cams[2]!.spec, null, 'a lost camera has nothing to capture');
  const lost = await freshFrame(cams[2]!, { framesDir: join(tmpdir(), 'doctor-unit-frames'), ffmpegPath: 'false', rtspTimeoutMs: 1000 });
  t.match(lost, { check: 'frame', level: 'fail', fact: /not found by the latest network discoveries/, data: { ok: false, error: { code: 'CAMERA_LOST' } } });
});

t.test('every capture and snapshot error code has its own advice', async (t) => {
  const rec = { key: 'cam1', address: '10.0.0.7' } as CameraRecord;
  const fallback = captureAdvice('SOMETHING_ELSE', rec);
  for (const code of [...Object.keys(CAPTURE_ERROR_RETRYABLE), ...Object.keys(SNAPSHOT_ERROR_RETRYABLE)]) {
    t.not(captureAdvice(code, rec), fallback, code);
  }
  t.match(captureAdvice('SNAPSHOT_AUTH_FAILED', rec), /camera-credentials --camera cam1/);
});

t.test('durations in words', async (t) => {
  t.same([4_000, 90_000, 7_500_000, 5 * 86_400_000].map(formatDuration), ['4 s', '1 min', '2 h 5 min', '5 days']);
});

t.test('card: the settings given (secrets by name only), WARN with the ignored lines', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-card-'));
  const file = join(dir, 'card.txt');
  t.match(cardFinding(config({ card: { file } })), { level: 'ok', fact: /no settings on the SD card/, data: { present: false } }, 'no card file');
  writeFileSync(file, 'CLOUD_URL=https://cloud.example.com\nCLAIM_CODE=ABCD-EFGH-JKMN\nWIFI_SSID=Cafe\nWIFI_PASSWORD=hunter2hunter2\n');
  const ok = cardFinding(config({ card: { file } }));
  t.match(ok, { level: 'ok', fact: `${file}: CLOUD_URL=https://cloud.example.com, CLAIM_CODE, WIFI_SSID=Cafe, WIFI_PASSWORD` });
  t.notMatch(JSON.stringify(ok), /ABCD|hunter2/, 'no secret in the report');
  writeFileSync(file, 'CLOUD_URL=cloud.example.com\nSETUP_PIN=1\n');
  const bad = cardFinding(config({ card: { file } }));
  t.equal(bad.level, 'warn');
  t.match(bad.fact, /2 line\(s\) ignored: .*line 1: CLOUD_URL must be an http:\/\/ or https:\/\/ URL.*line 2: SETUP_PIN must be 8 digits/);
  t.match(bad.todo, /vigil\.txt on the card's AUTOBOOT drive/);
});
