// Discovery: how long a round takes for 1 and for 16 cameras. The cameras are the ONVIF
// simulator (tools/onvif-sim), in this process, each on its own loopback address
// (127.0.1.x); they are found by the unicast sweep, not by multicast — a bench needs no root
// and no network namespaces this way (test/e2e/discovery.test.ts does the multicast). The
// sweep covers 127.0.1.0/27 (30 hosts, hostWaitMs 500): the silent hosts make up half a second
// of each round, as silent hosts on a real /24 would. A multicast round instead waits
// probeWaitMs (3 s by default) whatever the number of cameras.
//   cold: the first round: probe, then every camera is asked what it is (7 SOAP calls each, 4 at once)
//   warm: the next round: probe only, nobody is asked anything
//   describe: one camera's 7 calls (clock, device information, MAC, media service, profiles, URIs)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../agent/dist/store/db.js';
import { Kv } from '../agent/dist/store/kv.js';
import { systemClock } from '../agent/dist/lib/clock.js';
import { silentLogger } from '../agent/dist/lib/logger.js';
import { parseConfig } from '../agent/dist/config.js';
import { CameraRegistry } from '../agent/dist/cameras/camera-registry.js';
import { CameraCredentialStore } from '../agent/dist/cameras/credentials.js';
import { DiscoveryService } from '../agent/dist/discovery/discovery-service.js';
import { OnvifDevice } from '../agent/dist/discovery/onvif-device.js';
import { startOnvifSim, type OnvifSim } from '../tools/onvif-sim/sim.ts';
import { percentile, report } from './lib.ts';

const RUNS = Number(process.env.BENCH_DISCOVERY_RUNS ?? 5);
const HOST_WAIT_MS = 500;

async function startSims(n: number, port: number): Promise<OnvifSim[]> {
  const sims: OnvifSim[] = [];
  for (let i = 1; i <= n; i++) {
    const bind = `127.0.1.${i}`;
    const serial = `BENCH${String(i).padStart(4, '0')}`;
    sims.push(await startOnvifSim({ bind, discoveryIfaceAddress: bind, discoveryPort: port, hello: false, serial }));
  }
  return sims;
}

async function rounds(sims: OnvifSim[], port: number): Promise<{ cold: number; warm: number; requests: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-discovery-'));
  const db = openDb(join(dir, 'agent.db'));
  try {
    const log = silentLogger();
    const credentials = new CameraCredentialStore(new Kv(db), Buffer.alloc(32, 1));
    credentials.set(undefined, { username: 'admin', password: 'admin' }, Date.now());
    const config = parseConfig({ cloudUrl: 'http://127.0.0.1:1', discovery: { sweep: { cidr: '127.0.1.0/27', hostWaitMs: HOST_WAIT_MS, concurrency: 32 } } }).discovery;
    const registry = new CameraRegistry({ db, clock: systemClock, log });
    const service = new DiscoveryService({ registry, credentials, config, clock: systemClock, log, probe: { multicast: null, sweepPort: port } });
    const signal = new AbortController().signal;
    const before = sims.reduce((a, s) => a + s.requests.length, 0);
    let t0 = performance.now();
    await service.round(signal);
    const cold = performance.now() - t0;
    const found = registry.list().filter((c) => c.streamUri).length;
    if (found !== sims.length) throw new Error(`found ${found} of ${sims.length} cameras`);
    const requests = (sims.reduce((a, s) => a + s.requests.length, 0) - before) / sims.length;
    t0 = performance.now();
    await service.round(signal);
    const warm = performance.now() - t0;
    return { cold, warm, requests };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const first = await startOnvifSim({ bind: '127.0.1.1', discoveryIfaceAddress: '127.0.1.1', discoveryPort: 0, hello: false, serial: 'BENCH0001' });
const port = (first as unknown as { discovery: { port: number } }).discovery.port;
await first.close();

for (const n of [1, 16]) {
  const sims = await startSims(n, port);
  try {
    const cold: number[] = [];
    const warm: number[] = [];
    let requests = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = await rounds(sims, port);
      cold.push(r.cold);
      warm.push(r.warm);
      requests = r.requests;
    }
    const name = n === 1 ? '1_camera' : `${n}_cameras`;
    report(`discovery_round_cold_${name}_p50`, percentile(cold, 50), 'ms');
    report(`discovery_round_warm_${name}_p50`, percentile(warm, 50), 'ms');
    if (n === 1) {
      report('discovery_soap_requests_per_camera', requests, 'requests');
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        await new OnvifDevice({ xaddr: sims[0]!.xaddr, clock: systemClock, credentials: { username: 'admin', password: 'admin' } }).describe();
        ms.push(performance.now() - t0);
      }
      report('discovery_describe_one_camera_p50', percentile(ms, 50), 'ms');
    }
  } finally {
    await Promise.all(sims.map((s) => s.close()));
  }
}
