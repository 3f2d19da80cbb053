// Claim from the SD card, as a technician's card arrives at the agent: vigil.txt written by
// hand (a Notepad file: BOM, CRLF), copied by the firmware's own `vigil-card read`, erased by
// its `vigil-card erase-claim` (both in VIGIL_CARD_DIR mode: the card is a folder here), the
// built agent CLI, the real cloud and RTSP camera. Covers the claim, the erase, a power cut
// right after the claim, and the refusals (used, expired, another site) with the retry.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestCloud, type TestCloud } from '../helpers/cloud.js';
import { startRtspCamera, type RtspCamera } from '../helpers/rtsp-camera.js';
import { startAgentProcess, writeAgentConfig, type AgentLogLine, type AgentProcess } from '../helpers/agent-process.js';
import { tmpDir, type Teardown } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const OVERLAY = fileURLToPath(new URL('../../board/common/rootfs-overlay/', import.meta.url));
const VIGIL_CARD = join(OVERLAY, 'usr/sbin/vigil-card');

interface Card {
  /** The card's vigil.txt (its first partition, here a folder). */
  file: string;
  /** What the agent reads: the copy `vigil-card read` makes at boot. */
  copy: string;
  env: NodeJS.ProcessEnv;
  /** Writes vigil.txt as a laptop would, then copies it as the firmware does at boot. */
  write(lines: string[]): void;
}

async function makeCard(t: Teardown): Promise<Card> {
  const dir = await tmpDir(t, 'vigil-card-');
  mkdirSync(join(dir, 'card'));
  writeFileSync(join(dir, 'defaults'), '');
  writeFileSync(join(dir, 'cmdline'), 'rootwait\n');
  const env = {
    VIGIL_CARD_DIR: join(dir, 'card'),
    VIGIL_CARD_COPY: join(dir, 'card.txt'),
    // The firmware's library from the source tree, with this test's settings and command line
    VIGIL_LIB: join(OVERLAY, 'usr/lib/vigil/lib.sh'),
    VIGIL_DEFAULTS_FILE: join(dir, 'defaults'),
    VIGIL_CMDLINE_FILE: join(dir, 'cmdline'),
  };
  const file = join(dir, 'card', 'vigil.txt');
  return {
    file,
    copy: env.VIGIL_CARD_COPY,
    env,
    write(lines) {
      writeFileSync(file, '\uFEFF' + lines.map((l) => `${l}\r\n`).join(''));
      execFileSync('sh', [VIGIL_CARD, 'read'], { env: { ...process.env, ...env } });
    },
  };
}

/** A device: its own data dir and board serial; the config names no real cloud, as the image's does. */
async function device(t: Teardown, card: Card, camera: RtspCamera, serial: string, extra: Record<string, unknown> = {}): Promise<string> {
  const dataDir = await tmpDir(t, 'vigil-dev-');
  const serialFile = join(dataDir, 'serial');
  writeFileSync(serialFile, `${serial}\n`);
  return writeAgentConfig(dataDir, {
    cloudUrl: 'https://cloud.vigil.invalid',
    serialSources: [serialFile],
    captureIntervalMs: 2_000,
    update: { enabled: false },
    cameras: [{ id: 'cam1', url: camera.url('/cam1') }],
    card: { file: card.copy, eraseCommand: ['sh', VIGIL_CARD, 'erase-claim'] },
    ...extra,
  });
}

const start = (t: Teardown, config: string, card: Card): AgentProcess => startAgentProcess(t, config, card.env);
/** Waits for an agent's log line: generous, a loaded CI machine starts agents slowly (not a timing check). */
const LOG_WAIT_MS = 90_000;
const isMsg = (msg: string) => (l: AgentLogLine) => l.msg === msg;

/** Whether a vigil-card process for this card still runs (its environment names the card's folder). */
function cardCommandRunning(card: Card): boolean {
  const mark = `VIGIL_CARD_DIR=${card.env.VIGIL_CARD_DIR}\0`;
  return readdirSync('/proc').some((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/environ`, 'latin1').includes(mark);
    } catch {
      return false;
    }
  });
}

async function devices(cloud: TestCloud): Promise<{ id: string; site: string; hardwareId: string; claimedAt: number }[]> {
  return (await cloud.admin<{ id: string; site: string; hardwareId: string; claimedAt: number }[]>('GET', '/admin/v1/devices')).body;
}

t.test('a card with a claim code: the agent claims itself, uploads, and the code leaves the card', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1'] });
  const card = await makeCard(t);
  const code = await cloud.claimCode('Cafe Lune');
  card.write(['# Vigil device settings', `CLOUD_URL=${cloud.url}`, `CLAIM_CODE=${code}`, 'WIFI_COUNTRY=GB', 'SETUP_PIN=48213957']);
  // The board's activity LED: a test double of the kernel's LED class (a folder with its files)
  const led = join(await tmpDir(t, 'vigil-led-'), 'ACT');
  mkdirSync(led);
  writeFileSync(join(led, 'trigger'), 'none timer heartbeat [mmc0]\n');
  const agent = start(t, await device(t, card, camera, '10000000aa000001', { statusLight: { led }, health: { intervalMs: 2_000 } }), card);

  const claimed = await agent.waitForLog(isMsg('device claimed'), LOG_WAIT_MS);
  t.match(claimed, { site: 'Cafe Lune', source: 'card' }, 'claimed with the card\'s code, against the card\'s cloud');
  await agent.waitForLog(isMsg('used claim code erased from the card'), LOG_WAIT_MS);
  const left = readFileSync(card.file, 'utf8');
  t.notMatch(left, /CLAIM_CODE/, 'the code is gone from the card');
  t.equal(left, `\uFEFF# Vigil device settings\r\nCLOUD_URL=${cloud.url}\r\nWIFI_COUNTRY=GB\r\nSETUP_PIN=48213957\r\n`, 'every other line is kept as written (BOM, CRLF)');
  t.notMatch(readFileSync(card.copy, 'utf8'), /CLAIM_CODE/, 'and from the copy the agent reads');

  const devs = await devices(cloud);
  t.equal(devs.length, 1);
  t.equal(devs[0]!.site, 'Cafe Lune', 'the device appears under its site');
  await waitFor(async () => (await cloud.allFrames()).length >= 2, 30_000, 'the first capture in the cloud');
  t.pass('and its frames arrive');

  // What the technician sees: the light goes from "waiting for a claim" to "working"...
  await agent.waitForLog((l) => l.msg === 'status light' && l.state === 'ok', LOG_WAIT_MS);
  const lights = agent.logs.filter(isMsg('status light')).map((l) => l.state);
  t.equal(lights[0], 'setup', 'the light starts in "waiting for a claim" (slow blink)');
  t.equal(lights.at(-1), 'ok', `and ends in "working" (${lights.join(' → ')})`);
  t.equal(readFileSync(join(led, 'trigger'), 'utf8'), 'heartbeat', 'the LED runs the heartbeat trigger');
  // ...and the dashboard: the status page's name, port and the card's PIN, from the heartbeat
  const devId = devs[0]!.id;
  const listening = await agent.waitForLog(isMsg('status page listening'), LOG_WAIT_MS);
  await waitFor(async () => ((await cloud.admin<{ report: { local?: unknown } | null }>('GET', `/admin/v1/devices/${devId}`)).body.report?.local ?? null) !== null, 30_000, 'a heartbeat with the status page');
  const { report } = (await cloud.admin<{ report: { local: { hostName: string; port: number; setupPin: string } } }>('GET', `/admin/v1/devices/${devId}`)).body;
  t.match(report.local, { hostName: 'vigil-0001', port: listening.port, setupPin: '48213957' }, "the heartbeat names the page and carries the card's PIN");

  t.equal((await agent.stop()).code, 0);
  t.equal(readFileSync(join(led, 'trigger'), 'utf8'), 'mmc0', 'a stopped agent gives the LED back to the SD card activity');
});

t.test('a power cut right after the claim: the token survives; a code left on the card is not used again', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1'] });
  const card = await makeCard(t);
  const code = await cloud.claimCode('Cafe Lune');
  const lines = [`CLOUD_URL=${cloud.url}`, `CLAIM_CODE=${code}`];
  card.write(lines);
  const config = await device(t, card, camera, '10000000aa000002');

  const first = start(t, config, card);
  await first.waitForLog(isMsg('device claimed'), LOG_WAIT_MS);
  t.ok(cardCommandRunning(card), 'the card\'s processes are found by their environment (the agent itself, here)');
  await first.kill();
  // A SIGKILL spares the agent's children (a power cut would not): let an erase it had started end
  await waitFor(() => !cardCommandRunning(card), 30_000, 'the killed agent\'s vigil-card to end');
  const [claimedDevice] = await devices(cloud);
  // Whether or not the erase ran before the cut, put the code back: the erase never happened
  card.write(lines);

  const again = start(t, config, card);
  await again.waitForLog(isMsg('used claim code erased from the card'), LOG_WAIT_MS);
  t.notMatch(readFileSync(card.file, 'utf8'), /CLAIM_CODE/, 'the next start erases the code it had used');
  const before = (await cloud.allFrames()).length;
  await waitFor(async () => (await cloud.allFrames()).length >= before + 2, 30_000, 'uploads with the stored token');
  t.pass('the stored token still works after the power cut');
  t.notOk(again.logs.some(isMsg('device claimed')), 'the code was not used again');
  const after = await devices(cloud);
  t.equal(after.length, 1, 'still one device');
  t.equal(after[0]!.claimedAt, claimedDevice!.claimedAt, 'claimed once');
  await again.stop();

  // The same card in another Pi: refused, harmlessly
  card.write(lines);
  const other = start(t, await device(t, card, camera, '10000000aa000003'), card);
  const refused = await other.waitForLog(isMsg('claim code refused; waiting for a new code (this one is tried again later)'), LOG_WAIT_MS);
  t.match(refused, { code: 'CLAIM_CODE_USED', status: 410, source: 'card' }, 'another device with the used code: refused with the reason');
  t.ok((refused.retryInMs as number) >= 24_000, `and tried again only later (${refused.retryInMs as number} ms)`);
  t.equal((await devices(cloud)).length, 1, 'no second device');
  t.match(readFileSync(card.file, 'utf8'), /CLAIM_CODE/, 'a refused code stays on the card (it was not this device\'s)');
});

t.test('refused codes: expired, then a new one works; another site does not take a working device', async (t) => {
  const cloud = await startTestCloud(t);
  const camera = await startRtspCamera(t, { mounts: ['/cam1'] });
  const card = await makeCard(t);
  const late = (await cloud.admin<{ code: string }>('POST', '/admin/v1/claim-codes', { site: 'Cafe Lune', ttlSeconds: 1 })).body.code;
  await new Promise((r) => setTimeout(r, 1_100));
  card.write([`CLOUD_URL=${cloud.url}`, `CLAIM_CODE=${late}`]);
  const config = await device(t, card, camera, '10000000aa000004');
  const agent = start(t, config, card);
  const expired = await agent.waitForLog((l) => l.msg.startsWith('claim code refused') && l.code === 'CLAIM_CODE_EXPIRED', LOG_WAIT_MS);
  t.equal(expired.source, 'card', 'expired: refused, and the log says so');

  // The technician gets a new code: the device, still without a token, tries it within seconds
  card.write([`CLOUD_URL=${cloud.url}`, `CLAIM_CODE=${await cloud.claimCode('Cafe Lune')}`]);
  const t0 = Date.now();
  await agent.waitForLog(isMsg('device claimed'), 30_000);
  // The refused code waits at least 24 s (30 s less its jitter); a new one waits for the next 5 s poll
  t.ok(Date.now() - t0 < 20_000, `a new code is tried at once (${Date.now() - t0} ms), not after the refused one's wait`);
  await waitFor(async () => (await cloud.allFrames()).length >= 2, 30_000, 'uploads');
  await agent.stop();

  // A code for another site, while the device works at Cafe Lune: refused, the device keeps going
  card.write([`CLOUD_URL=${cloud.url}`, `CLAIM_CODE=${await cloud.claimCode('Other Site')}`]);
  const moved = start(t, config, card);
  const refused = await moved.waitForLog((l) => l.msg.startsWith('claim code refused'), LOG_WAIT_MS);
  t.match(refused, { code: 'CLAIM_DEVICE_OTHER_SITE', status: 409 }, 'another site: refused');
  const before = (await cloud.allFrames()).length;
  await waitFor(async () => (await cloud.allFrames()).length >= before + 2, 30_000, 'uploads after the refusal');
  t.pass('the device keeps uploading with its token');
  const devs = await devices(cloud);
  t.same(
    devs.map((d) => d.site),
    ['Cafe Lune'],
    'and stays at its site',
  );
  await moved.stop();
});
