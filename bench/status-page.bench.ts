// The technician's status page: what it costs the agent and how fast it answers. The real agent
// process (built CLI) capturing two 1280x720 streams from the RTSP test camera every 2 s and
// uploading to the real cloud, its page on loopback. Figures: latency of the JSON status, the
// HTML page and a thumbnail (the first after a new frame is scaled by ffmpeg, later ones are
// served from memory), and the agent's RSS with the page on against an agent with it off.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_ADMIN_TOKEN, LOOPBACK_AGENT, percentile, report, ROOT, spawnUntil, startBenchCloud, startRtsp, stop } from './lib.ts';

const REQUESTS = 200;
const RSS_WARMUP_MS = 15_000;
const RSS_SAMPLES = 10;

const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-page-'));
const cloud = await startBenchCloud(dir);
const rtsp = await startRtsp(['/c1', '/c2:smpte'], '1280x720');
writeFileSync(join(dir, 'serial'), '10000000bench002\n');

async function startAgent(name: string, claimCode: string, local: Record<string, unknown>) {
  const dataDir = join(dir, name);
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      ...LOOPBACK_AGENT,
      cloudUrl: cloud.url,
      dataDir,
      claimCode,
      captureIntervalMs: 2000,
      serialSources: [join(dir, 'serial')],
      cameras: ['c1', 'c2'].map((id) => ({ id, url: `${rtsp.base}/${id}` })),
      local,
    }),
  );
  const ready = local.enabled === false ? /"msg":"agent started"/ : /"port":(\d+),"msg":"status page listening"/;
  const { child, match } = await spawnUntil(process.execPath, [join(ROOT, 'agent/dist/cli.js'), 'run', '--config', file], ready, { VIGIL_LOG_LEVEL: 'info' }, 60_000);
  const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
  return { child, dataDir, port: match[1] ? Number(match[1]) : 0, rssMb };
}

async function timed(n: number, fn: () => Promise<Response>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fn();
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`status page answered ${res.status}`);
    ms.push(performance.now() - t0);
  }
  return ms;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const on = await startAgent('on', cloud.claimCode, { host: '127.0.0.1', port: 0 });
const base = `http://127.0.0.1:${on.port}`;
const pin = readFileSync(join(on.dataDir, 'setup-pin'), 'utf8').trim();
const login = await fetch(`${base}/login`, { method: 'POST', body: new URLSearchParams({ pin }), redirect: 'manual' });
const cookie = String(login.headers.get('set-cookie')).split(';')[0]!;
const get = (path: string) => () => fetch(base + path, { headers: { cookie } });

// Both cameras have a thumbnail frame
for (;;) {
  const s = (await (await get('/api/status')()).json()) as { cameras: { thumbnailAt: number | null }[] };
  if (s.cameras.length === 2 && s.cameras.every((c) => c.thumbnailAt !== null)) break;
  await sleep(500);
}
const json = await timed(REQUESTS, get('/api/status'));
const html = await timed(REQUESTS, get('/'));
// The first thumbnail after each new frame is scaled; wait for new frames between rounds
const scaled: number[] = [];
for (let i = 0; i < 5; i++) {
  scaled.push(...(await timed(1, get('/thumbnails/c1.jpg'))));
  await sleep(2_500);
}
const cached = await timed(REQUESTS, get('/thumbnails/c1.jpg'));

report('status_page_json_p50', percentile(json, 50), 'ms');
report('status_page_json_p99', percentile(json, 99), 'ms');
report('status_page_html_p50', percentile(html, 50), 'ms');
report('status_page_thumbnail_scaled_p50', percentile(scaled, 50), 'ms');
report('status_page_thumbnail_cached_p50', percentile(cached, 50), 'ms');

// RSS: the agent above (page on, looked at) against one with the page off, same cameras
const claim = await fetch(`${cloud.url}/admin/v1/claim-codes`, {
  method: 'POST',
  headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': 'application/json' },
  body: JSON.stringify({ site: 'bench' }),
});
const off = await startAgent('off', ((await claim.json()) as { code: string }).code, { enabled: false });
await sleep(RSS_WARMUP_MS);
const rss = { on: [] as number[], off: [] as number[] };
for (let i = 0; i < RSS_SAMPLES; i++) {
  rss.on.push(on.rssMb());
  rss.off.push(off.rssMb());
  await sleep(1000);
}
report('agent_rss_status_page_on_p50', percentile(rss.on, 50), 'MB');
report('agent_rss_status_page_off_p50', percentile(rss.off, 50), 'MB');

await stop(on.child);
await stop(off.child);
await stop(rtsp.child);
await cloud.close();
rmSync(dir, { recursive: true, force: true });
