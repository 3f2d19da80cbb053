// A fleet against one cloud: 100, 1 000 and 5 000 simulated devices (load-generator.ts), each
// sending a frame pair (~155 KB original, ~27 KB compressed) and a heartbeat every 30 s, on
// SQLite and on PostgreSQL. The cloud is the built CLI in its own process (`vigil-cloud serve`,
// configured by env as an operator would), so the generator does not share its event loop.
// Per store and fleet size: claims/s, then over the steady window frames/s, pairs/s offered vs
// achieved, p50/p99 of a whole pair and of each request kind, errors by kind, and the CPU of
// the cloud, of PostgreSQL (the whole cluster) and of the generator, so the bottleneck has a name.
// Quick runs: LOAD_STORES=sqlite LOAD_DEVICES=100 LOAD_SECONDS=10.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { register } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import sharp from 'sharp';
import { SAMPLE_PHOTO, withNoise } from '../cloud/test/scenes.ts';
import { benchFrame } from './device-client.ts';
import { BENCH_ADMIN_TOKEN, percentile, report, ROOT } from './lib.ts';
import { CLOCK_TICKS_PER_S, clusterTicks, cpuTicks, machineTicks, peakRssMb, postmasterPid, sampleStates, schedstat } from './proc-stats.ts';
import { claimFleet, FleetClient, LoadStats, PERIOD_MS, runSteady, type FramePair, type RequestKind } from './load-generator.ts';

// test/helpers is written for the test runner's TypeScript loader, which maps './x.js' to
// x.ts; plain node (how benches run) needs that one mapping to load it.
register(
  'data:text/javascript,' +
    encodeURIComponent(
      "export async function resolve(s, c, next) { try { return await next(s, c); } catch (e) { if (e?.code === 'ERR_MODULE_NOT_FOUND' && s.startsWith('.') && s.endsWith('.js') && c.parentURL?.endsWith('.ts')) return next(s.slice(0, -3) + '.ts', c); throw e; } }",
    ),
);
const { startPostgres } = await import('../test/helpers/postgres.ts');
const { freePort } = await import('../test/helpers/ports.ts');

type StoreKind = 'sqlite' | 'postgres';
const list = (v: string | undefined, d: string) => (v ?? d).split(',').map((s) => s.trim()).filter(Boolean);
const STORES = list(process.env.LOAD_STORES, 'sqlite,postgres') as StoreKind[];
const DEVICES = list(process.env.LOAD_DEVICES, '100,1000,5000').map(Number);
const SECONDS = Number(process.env.LOAD_SECONDS ?? PERIOD_MS / 1000);
for (const s of STORES) if (s !== 'sqlite' && s !== 'postgres') throw new Error(`LOAD_STORES: unknown store ${s} (sqlite, postgres)`);
for (const d of DEVICES) if (!Number.isInteger(d) || d < 1) throw new Error(`LOAD_DEVICES: ${d} is not a device count`);
if (!(SECONDS > 0)) throw new Error(`LOAD_SECONDS: ${process.env.LOAD_SECONDS} is not a duration`);

const CLI = join(ROOT, 'cloud', 'dist', 'cli.js');
/** Distinct frame pairs; device i sends pair (i + k) % FRAME_POOL as its k-th frame. */
const FRAME_POOL = 16;
/**
 * The bar for "this load is sustained", besides no errors and nothing abandoned: a cloud that
 * keeps up answers a pair within a few seconds and gets through nearly all that was offered
 * (the last pairs of the window may still be in flight at its end); an overloaded one queues,
 * and within one period its latency climbs to tens of seconds.
 */
const SUSTAINED_PAIR_P99_MS = 5_000;
const SUSTAINED_SHARE = 0.9;
const CLOUD_LINES_SHOWN = 5;

// Everything started here is stopped on the way out, also after a failure or a signal.
const cleanups: (() => void)[] = [];
const cleanUp = () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      fn();
    } catch (err) {
      console.error('load bench cleanup:', err);
    }
  }
};
process.on('exit', cleanUp);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

/**
 * The frames every device sends: the sample photo with a little sensor noise (a new seed per
 * pair, so every frame's sha256 and object differ, as a live camera's do) as a 1280×720
 * original (~155 KB) and a 640×360 compressed copy (~27 KB). Made once: encoding per frame
 * would load the generator, not the cloud, and the cloud's work per upload does not depend on
 * which bytes it hashes and stores.
 */
async function framePool(): Promise<FramePair[]> {
  const make = async (w: number, h: number, quality: number, seed: number) => {
    const data = await sharp(SAMPLE_PHOTO).resize(w, h, { fit: 'cover' }).removeAlpha().raw().toBuffer();
    const noisy = withNoise({ data, width: w, height: h }, 1, seed);
    return benchFrame(await sharp(noisy.data, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality }).toBuffer());
  };
  const pool: FramePair[] = [];
  for (let i = 0; i < FRAME_POOL; i++) pool.push({ original: await make(1280, 720, 60, i + 1), compressed: await make(640, 360, 30, i + 1) });
  return pool;
}

interface CloudProcess {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/** `vigil-cloud serve` on a free loopback port, configured by env only; resolves once /healthz answers. */
async function startCloudProcess(dataDir: string, databaseUrl: string | undefined): Promise<CloudProcess> {
  const port = await freePort();
  // Only this bench's settings: nothing from the caller's VIGIL_* environment leaks in.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VIGIL_')));
  Object.assign(env, {
    VIGIL_CLOUD_HOST: '127.0.0.1',
    VIGIL_CLOUD_PORT: String(port),
    VIGIL_CLOUD_DATA_DIR: dataDir,
    VIGIL_ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
    VIGIL_LOG_LEVEL: 'warn',
    VIGIL_DETECTOR: 'off',
    // Seven requests per device per period; the limit is not what is measured.
    VIGIL_DEVICE_RATE_LIMIT: '1000000',
    ...(databaseUrl ? { VIGIL_DATABASE_URL: databaseUrl } : {}),
  });
  const child = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => void child.kill('SIGKILL');
  cleanups.push(kill);
  // The last lines it printed, to say why it failed; the first few also go to the bench's
  // stderr (an overloaded cloud logs every request cut short, which would bury the figures).
  const tail: string[] = [];
  let shown = 0;
  const keep = (b: Buffer) => {
    for (const line of b.toString().split('\n').filter(Boolean)) {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      if (line.includes('VIGIL_FIRMWARE_KEYRING')) continue; // expected: no firmware here
      if (shown++ < CLOUD_LINES_SHOWN) process.stderr.write(`cloud: ${line.slice(0, 500)}\n`);
    }
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the cloud exited (${child.exitCode}): ${tail.join(' | ')}`);
    if (Date.now() > deadline) throw new Error(`the cloud did not answer on ${url} within 30 s: ${tail.join(' | ')}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url,
    stop: async () => {
      if (shown > CLOUD_LINES_SHOWN) process.stderr.write(`cloud: (${shown - CLOUD_LINES_SHOWN} more lines)\n`);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(kill, 15_000);
        await exited;
        clearTimeout(t);
      }
      cleanups.splice(cleanups.indexOf(kill), 1);
    },
  };
}

interface Postgres {
  url: string;
  port: number;
}

/** A fresh database on the bench's cluster, so every run starts empty. */
async function freshDatabase(server: Postgres, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  return url.href;
}

/** One store and fleet size, from a fresh cloud; whether the load was sustained. */
/** Transactions committed or rolled back in a database so far (each statement outside a transaction is one). */
async function transactions(databaseUrl: string): Promise<number> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    // The statistics are a snapshot per transaction; start from a fresh one.
    await c.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await c.query<{ n: string }>('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()');
    return Number(rows[0]!.n);
  } finally {
    await c.end();
  }
}

async function run(store: StoreKind, devices: number, frames: FramePair[], postgres: Postgres | undefined): Promise<boolean> {
  const name = `load_${store}_${devices}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'vigil-bench-load-'));
  const removeDir = () => rmSync(dataDir, { recursive: true, force: true });
  cleanups.push(removeDir);
  const databaseUrl = store === 'postgres' ? await freshDatabase(postgres!, name) : undefined;
  const cloud = await startCloudProcess(dataDir, databaseUrl);
  const client = new FleetClient(cloud.url, Math.min(devices, 512));
  try {
    const { tokens, claimMs } = await claimFleet(client, BENCH_ADMIN_TOKEN, devices);
    report(`${name}_claims`, devices / (claimMs / 1000), 'claims/s');
    report(`${name}_claim_p99`, percentile(client.stats.latency.claim, 99), 'ms');

    // The steady state only: the claims' latencies and CPU are not in what follows.
    client.stats = new LoadStats();
    const pm = postgres ? postmasterPid(postgres.port) : undefined;
    const pid = cloud.child.pid!;
    const before = {
      cloud: cpuTicks(pid),
      pg: pm ? clusterTicks(pm) : 0,
      self: process.cpuUsage(),
      machine: machineTicks(),
      loop: schedstat(pid),
      selfLoop: schedstat(process.pid),
      at: performance.now(),
    };
    const xactsBefore = databaseUrl ? await transactions(databaseUrl) : 0;
    const states = sampleStates(pid);
    const r = await runSteady(client, tokens, frames, SECONDS * 1000);
    // CPU over the window and its drain (the work the window asked for).
    const s = (performance.now() - before.at) / 1000;
    const { samples, disk } = states();
    const loop = schedstat(pid);
    const selfLoop = schedstat(process.pid);
    const nsPct = (ns: number) => (100 * ns) / 1e9 / s;
    const pct = (ticks: number) => (100 * ticks) / CLOCK_TICKS_PER_S / s;
    const cpu = {
      cloud: pct(cpuTicks(pid) - before.cloud),
      pg: pm ? pct(clusterTicks(pm) - before.pg) : 0,
      self: (100 * ((u) => u.user + u.system)(process.cpuUsage(before.self))) / 1e6 / s,
      machine: pct(machineTicks() - before.machine),
    };
    const w = r.durationMs / 1000;
    const st = client.stats;
    report(`${name}_frames`, r.framesInWindow / w, 'frames/s');
    report(`${name}_pairs_offered`, r.offeredPairs / w, 'pairs/s');
    report(`${name}_pairs_achieved`, r.pairsInWindow / w, 'pairs/s');
    report(`${name}_heartbeats`, r.heartbeatsInWindow / w, 'heartbeats/s');
    for (const kind of ['pair', 'presign', 'put', 'complete', 'heartbeat'] as const) {
      const l = st.latency[kind];
      if (l.length === 0) continue;
      report(`${name}_${kind}_p50`, percentile(l, 50), 'ms');
      report(`${name}_${kind}_p99`, percentile(l, 99), 'ms');
    }
    report(`${name}_start_lag_p99`, r.startLag.length ? percentile(r.startLag, 99) : 0, 'ms');
    const kinds: RequestKind[] = ['presign', 'put', 'complete', 'heartbeat'];
    for (const kind of kinds) report(`${name}_errors_${kind}`, st.errorCount(kind), 'errors');
    report(`${name}_backlog_at_end`, r.backlogAtEnd, 'pairs');
    report(`${name}_abandoned`, r.abandoned, 'pairs');
    // Percent of one core; the machine has cpus().length of them.
    report(`${name}_cpu_cloud`, cpu.cloud, '%');
    if (pm) report(`${name}_cpu_postgres`, cpu.pg, '%');
    report(`${name}_cpu_generator`, cpu.self, '%');
    report(`${name}_cpu_other`, Math.max(0, cpu.machine - cpu.cloud - cpu.pg - cpu.self), '%');
    // Where the cloud's event loop spent the window: running JS, waiting for a core, blocked on disk.
    report(`${name}_cloud_loop_cpu`, nsPct(loop.cpu - before.loop.cpu), '%');
    report(`${name}_cloud_loop_runqueue`, nsPct(loop.wait - before.loop.wait), '%');
    report(`${name}_cloud_loop_disk`, samples ? (100 * disk) / samples : 0, '%');
    report(`${name}_generator_loop_runqueue`, nsPct(selfLoop.wait - before.selfLoop.wait), '%');
    // What one device's period (a pair and a heartbeat) costs, in CPU time: machine-independent
    // enough to size a cloud (one core of event loop serves 30 000 / loop ms devices). Only
    // meaningful when sustained (an overloaded cloud also spends time on requests that time out)
    // and busy (at 100 devices the idle loops and GC weigh on few pairs).
    if (r.pairsDone > 0) {
      const perPair = (pctOfCore: number) => (pctOfCore / 100) * s * 1000 / r.pairsDone;
      report(`${name}_cloud_cpu_per_pair`, perPair(cpu.cloud), 'ms');
      report(`${name}_cloud_loop_cpu_per_pair`, perPair(nsPct(loop.cpu - before.loop.cpu)), 'ms');
      if (pm) report(`${name}_postgres_cpu_per_pair`, perPair(cpu.pg), 'ms');
      // Round trips that commit, per device period: how chatty the store is.
      if (databaseUrl) report(`${name}_postgres_xacts_per_pair`, ((await transactions(databaseUrl)) - xactsBefore) / r.pairsDone, 'xacts');
    }
    report(`${name}_cloud_rss_peak`, peakRssMb(pid), 'MB');

    const errors = kinds.reduce((n, k) => n + st.errorCount(k), 0);
    const pairP99 = st.latency.pair.length ? percentile(st.latency.pair, 99) : Infinity;
    const sustained = errors === 0 && r.abandoned === 0 && pairP99 <= SUSTAINED_PAIR_P99_MS && r.pairsInWindow >= SUSTAINED_SHARE * r.offeredPairs;
    report(`${name}_sustained`, sustained ? 1 : 0, 'bool');
    for (const [key, count] of st.errors) console.error(`${name}: ${count} × ${key}, e.g. ${st.examples.get(key)}`);
    if (!sustained) {
      const busiest = [
        ['cloud', cpu.cloud],
        ['postgres', cpu.pg],
        ['generator', cpu.self],
      ].sort((a, b) => (b[1] as number) - (a[1] as number))[0]!;
      console.error(
        `${name}: NOT sustained — ${(r.pairsInWindow / w).toFixed(1)} of ${(r.offeredPairs / w).toFixed(1)} pairs/s, ${errors} errors, ` +
          `pair p99 ${Number.isFinite(pairP99) ? `${pairP99.toFixed(0)} ms` : 'n/a (none done)'}, ${r.backlogAtEnd} pairs behind at the end, ${r.abandoned} abandoned; ` +
          `busiest: ${busiest[0]} at ${(busiest[1] as number).toFixed(0)}% of a core (machine ${cpu.machine.toFixed(0)}% of ${cpus().length * 100}%); ` +
          `cloud event loop: ${nsPct(loop.cpu - before.loop.cpu).toFixed(0)}% running, ${nsPct(loop.wait - before.loop.wait).toFixed(0)}% waiting for a core, ` +
          `${samples ? ((100 * disk) / samples).toFixed(0) : 0}% blocked on disk`,
      );
    }
    return sustained;
  } finally {
    await client.close().catch(() => client.destroy());
    await cloud.stop();
    removeDir();
    cleanups.splice(cleanups.indexOf(removeDir), 1);
  }
}

const frames = await framePool();
let postgres: Postgres | undefined;
if (STORES.includes('postgres')) postgres = await startPostgres({ teardown: (fn) => void cleanups.push(() => void fn()) });
try {
  for (const store of STORES) {
    // Every point runs, sustained or not: where a fleet size is beyond the machine, its numbers
    // (and the NOT sustained line) say by how much.
    for (const devices of DEVICES) await run(store, devices, frames, store === 'postgres' ? postgres : undefined);
  }
} finally {
  cleanUp();
}
