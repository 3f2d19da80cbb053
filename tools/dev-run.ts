// `make run`: the cloud and an agent on the embedded default (SQLite + a local object folder),
// against the project's RTSP test camera — so a newcomer sees frames arrive, and events made of
// them, without owning a camera or a vision model. Everything lives under .run/; logs go to
// .run/*.log. Ctrl-C stops it all.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUN = join(ROOT, '.run');
const PORT = Number(process.env.VIGIL_CLOUD_PORT ?? 8080);
const CLOUD_URL = `http://127.0.0.1:${PORT}`;
const STATUS_EVERY_MS = 15_000;
/** The back door's slides change this often; the agent captures every 30 s. */
const SLIDE_SECONDS = 45;

const children: ChildProcess[] = [];

function start(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const log = createWriteStream(join(RUN, `${name}.log`), { flags: 'a' });
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited (${code ?? signal}); see .run/${name}.log`);
      void shutdown(1);
    }
  });
  children.push(child);
  return child;
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
}

let stopping = false;
const timers: NodeJS.Timeout[] = [];
async function shutdown(code: number): Promise<never> {
  stopping = true;
  for (const t of timers) clearInterval(t);
  for (const c of children.reverse()) if (c.exitCode === null) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1500));
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

mkdirSync(join(RUN, 'agent'), { recursive: true });
const cloudCli = join(ROOT, 'cloud/dist/cli.js');
const cloudEnv = { VIGIL_CLOUD_DATA_DIR: join(RUN, 'cloud'), VIGIL_CLOUD_PORT: String(PORT) };

start('cloud', process.execPath, [cloudCli, 'serve'], cloudEnv);
await waitFor('the cloud', async () => (await fetch(`${CLOUD_URL}/healthz`)).ok);
const adminToken = readFileSync(join(RUN, 'cloud', 'admin-token'), 'utf8').trim();

// The dashboard's user: `admin` with a generated password, kept in .run/cloud/dashboard-password
// so every run prints the same one (delete the file for a new one).
const passwordFile = join(RUN, 'cloud', 'dashboard-password');
const newPassword = !existsSync(passwordFile);
if (newPassword) writeFileSync(passwordFile, `${randomBytes(12).toString('base64url')}\n`, { mode: 0o600 });
const dashboardPassword = readFileSync(passwordFile, 'utf8').trim();
const cliEnv = { ...process.env, ...cloudEnv, VIGIL_USER_PASSWORD: dashboardPassword };
const users = execFileSync(process.execPath, [cloudCli, 'user', 'list'], { env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
if (!/^admin\t/im.test(users)) execFileSync(process.execPath, [cloudCli, 'user', 'add', 'admin'], { env: cliEnv, stdio: ['ignore', 'ignore', 'inherit'] });
else if (newPassword) execFileSync(process.execPath, [cloudCli, 'user', 'passwd', 'admin'], { env: cliEnv, stdio: ['ignore', 'ignore', 'inherit'] });

// The back door: slides of an empty scene and of a person (from a photograph that ships in the
// object detector's npm package) in turn, so the detector finds someone now and then.
const slides = join(RUN, 'demo-slides');
await makeSlides(slides);
const camera = spawn(
  '/usr/bin/python3',
  [join(ROOT, 'tools/rtsp-camera.py'), '--port', '0', '--size', '1280x720', '--mount', '/front:ball', '--mount', `/back:slides=${slides}`, '--slide-seconds', String(SLIDE_SECONDS)],
  {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
children.push(camera);
const rtspBase = await new Promise<string>((resolve, reject) => {
  createInterface({ input: camera.stdout! }).on('line', (l) => {
    const m = /^ready (rtsp:\/\/\S+)$/.exec(l);
    if (m) resolve(m[1]!);
  });
  camera.on('exit', () => reject(new Error('the RTSP test camera exited; see its output above')));
});

// A stable fake board serial for this machine's demo device.
const serialFile = join(RUN, 'agent', 'board-serial');
if (!existsSync(serialFile)) writeFileSync(serialFile, `${randomBytes(8).toString('hex')}\n`);
const claimCode = execFileSync(process.execPath, [cloudCli, 'claim-code', '--site', 'Demo restaurant'], { env: { ...process.env, ...cloudEnv } })
  .toString()
  .trim()
  .split(/\s+/)
  .at(-1)!;
const agentConfig = join(RUN, 'agent', 'agent.json');
writeFileSync(
  agentConfig,
  JSON.stringify(
    {
      cloudUrl: CLOUD_URL,
      dataDir: join(RUN, 'agent'),
      claimCode,
      deviceName: 'demo-pi',
      serialSources: [serialFile],
      // The demo's cameras are the test camera on loopback; ONVIF discovery would probe your
      // LAN (turn it on with VIGIL_DISCOVERY_ENABLED=true to find real cameras).
      discovery: { enabled: false },
      // The status page a technician opens on the LAN (port 80 on a device), here on loopback
      // next to the cloud.
      local: { host: '127.0.0.1', port: PORT + 1 },
      cameras: [
        { id: 'front', name: 'Front door', url: `${rtspBase}/front` },
        { id: 'back', name: 'Back door', url: `${rtspBase}/back` },
      ],
    },
    null,
    2,
  ),
);
start('agent', process.execPath, [join(ROOT, 'agent/dist/cli.js'), 'run', '--config', agentConfig]);

console.log(`
Vigil is running on the embedded default (SQLite + a local object folder).

  cloud        ${CLOUD_URL}            log: .run/cloud.log, data: .run/cloud/
  dashboard    ${CLOUD_URL}/login user admin password ${dashboardPassword}
  test camera  ${rtspBase}/front (a moving test pattern) and ${rtspBase}/back (now empty, now a person)
  agent        config: .run/agent/agent.json, log: .run/agent.log, spool: .run/agent/spool/
  status page  http://127.0.0.1:${PORT + 1}/ (the device's page for technicians; setup PIN in .run/agent/setup-pin)
  analysis     the local object detector and the default rules (no vision model): a person at the back
               door is a low event in opening hours. To see alerts, close the site around the clock:
               curl -X PUT -H 'authorization: Bearer ${adminToken}' -H 'content-type: application/json' \\
                 -d '{"closedHours":"00:00-24:00"}' ${CLOUD_URL}/admin/v1/sites/<id>/analysis   (ids: /admin/v1/sites)

  API:  curl -H 'authorization: Bearer ${adminToken}' ${CLOUD_URL}/admin/v1/cameras
        curl -H 'authorization: Bearer ${adminToken}' ${CLOUD_URL}/admin/v1/cameras/<id>/frames

The agent captures every 30 s; frame and event counts appear below. Ctrl-C stops everything.
`);

timers.push(setInterval(() => {
  void (async () => {
    const res = await fetch(`${CLOUD_URL}/admin/v1/cameras`, { headers: { authorization: `Bearer ${adminToken}` } });
    const cams = (await res.json()) as { key: string; name: string | null; frames: number; lastCapturedAt: number | null }[];
    const events = await fetch(`${CLOUD_URL}/admin/v1/events?limit=1`, { headers: { authorization: `Bearer ${adminToken}` } });
    const [latest] = (await events.json()) as { level: string; summary: string }[];
    const analysis = await fetch(`${CLOUD_URL}/admin/v1/analysis`, { headers: { authorization: `Bearer ${adminToken}` } });
    const { counters } = (await analysis.json()) as { counters: { events: number; frames: { seen: number; skipped: number } } };
    const line = cams.length
      ? cams.map((c) => `${c.name ?? c.key}: ${c.frames} frames${c.lastCapturedAt ? `, last ${Math.round((Date.now() - c.lastCapturedAt) / 1000)} s ago` : ''}`).join(' | ') +
        ` | ${counters.events} events (${counters.frames.skipped} of ${counters.frames.seen} frames unchanged)${latest ? `, latest: ${latest.level} — ${latest.summary}` : ''}`
      : 'waiting for the first frames…';
    console.log(`${new Date().toISOString().slice(11, 19)}  ${line}`);
  })().catch((err: unknown) => {
    if (!stopping) console.error(`status: ${(err as Error).message}`);
  });
}, STATUS_EVERY_MS));

/** Four slides: the empty scene, a person on the left, on the right, the empty scene again. */
async function makeSlides(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const [w, h] = [1280, 720];
  const empty = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${w}x${h}`, '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '3', '-']);
  // The detector package's exports map hides its files from require.resolve; its main entry is in dist/.
  const photo = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/human')), '..', 'assets', 'samples.jpg');
  const person = await sharp(photo).extract({ left: 181, top: 19, width: 213, height: 383 }).resize({ height: 420 }).jpeg().toBuffer();
  let n = 0;
  const slide = (left?: number) => (left === undefined ? sharp(empty) : sharp(empty).composite([{ input: person, left, top: 200 }])).jpeg({ quality: 85 }).toFile(join(dir, `${String(n++).padStart(3, '0')}.jpg`));
  await slide();
  await slide(200);
  await slide(820);
  await slide();
}
