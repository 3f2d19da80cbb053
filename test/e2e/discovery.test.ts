// Discovery end to end in a private LAN of network namespaces (test/helpers/netns.ts): three
// simulated ONVIF cameras and the agent's discovery (registry, encrypted credentials, the
// Discovery service, by multicast bound to the agent's address) in a namespace of its own.
//   - two cameras are found and keyed by MAC; the one whose clock is 10 minutes off too;
//   - a wrong password is that camera's ONVIF_AUTH_FAILED, after a handful of requests, and
//     the rounds that follow send it nothing (counted in the simulator's own request log);
//   - a camera that changes IP between rounds keeps its key: one address_changed event;
//   - a camera that is switched off is lost after lostAfterRounds rounds.
// Multicast never leaves the namespaces: every link is created inside them.
import t from 'tap';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnOnvifSim, type OnvifSimProcess } from '../../tools/onvif-sim/spawn.ts';
import { createLan, netnsSkipReason } from '../helpers/netns.js';
import type { CameraRecord } from '../../agent/src/cameras/types.js';

const RUNNER = fileURLToPath(new URL('./fixtures/discovery-runner.ts', import.meta.url));
const skip = await netnsSkipReason();

interface Change {
  type: 'change';
  change: string;
  camera: CameraRecord;
  previousAddress?: string | null;
  replaces?: string;
}

/** SOAP requests the simulator logged (verbose: one stderr line per request). */
const soapRequests = (sim: OnvifSimProcess): number => sim.stderr().split('\n').filter((l) => / \/onvif\/\w+ \w+ -> /.test(l)).length;

t.test('discovery in a netns LAN: found by MAC, clock 10 min off, wrong password without a retry storm, new IP same key, lost', { skip: skip ?? false }, async (t) => {
  const lan = await createLan(t, { hosts: ['cam1', 'cam2', 'cam3', 'agent'], key: import.meta.url });
  const [cam1, cam2, cam3, agent] = [lan.host('cam1'), lan.host('cam2'), lan.host('cam3'), lan.host('agent')];
  const firstAddress = cam1.address; // setAddress updates the host object
  const [sim1, sim2, sim3] = await Promise.all([
    // A wildcard bind: it keeps serving when its address changes, and announces the new one.
    spawnOnvifSim({ bind: '0.0.0.0', port: 80, discoveryIfaceAddress: cam1.address, serial: '000123456', mac: '02:56:0a:00:00:01', password: 'right', verbose: true }, { prefix: lan.prefix('cam1') }),
    spawnOnvifSim({ bind: cam2.address, port: 8080, discoveryIfaceAddress: cam2.address, serial: '20240615', mac: '02:56:0a:00:00:02', password: 'right', clockOffsetS: 600, verbose: true }, { prefix: lan.prefix('cam2') }),
    spawnOnvifSim({ bind: cam3.address, port: 80, discoveryIfaceAddress: cam3.address, serial: '777', mac: '02:56:0a:00:00:03', password: 'not-the-site-one', verbose: true }, { prefix: lan.prefix('cam3') }),
  ]);
  t.teardown(() => Promise.all([sim1!.stop(), sim2!.stop(), sim3!.stop()]));

  const dataDir = mkdtempSync(join(tmpdir(), 'vigil-discovery-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const discovery = { interfaceAddress: agent.address, probeWaitMs: 1500, callTimeoutMs: 3000, lostAfterRounds: 2 };
  const runner = lan.spawn('agent', process.execPath, ['--experimental-strip-types', '--no-warnings', RUNNER, JSON.stringify({ dataDir, discovery })], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  runner.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  t.teardown(async () => {
    if (runner.exitCode === null && runner.signalCode === null) {
      runner.stdin!.end(`${JSON.stringify({ cmd: 'quit' })}\n`);
      const timer = setTimeout(() => runner.kill('SIGKILL'), 3000);
      await once(runner, 'close');
      clearTimeout(timer);
    }
  });
  const lines = createInterface({ input: runner.stdout! })[Symbol.asyncIterator]();
  const changes: Change[] = [];
  /** Sends a command and collects lines up to its answer (changes on the way). */
  const ask = async <T>(cmd: Record<string, unknown>, type: string): Promise<{ answer: T; changes: Change[] }> => {
    runner.stdin!.write(`${JSON.stringify(cmd)}\n`);
    const seen: Change[] = [];
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const next = await Promise.race([
        lines.next(),
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`no answer to ${cmd.cmd}; stderr: ${stderr}`)), 30_000))),
      ]).finally(() => clearTimeout(timer));
      if (next.done) throw new Error(`the runner ended; stderr: ${stderr}`);
      const msg = JSON.parse(next.value) as { type: string };
      if (msg.type === 'change') {
        seen.push(msg as Change);
        changes.push(msg as Change);
      } else if (msg.type === type) return { answer: msg as T, changes: seen };
    }
  };
  const round = () => ask<{ status: { answered: number; lastError: string | null } }>({ cmd: 'round' }, 'round');
  const kinds = (cs: Change[]) => cs.map((c) => `${c.change} ${c.camera.key}`).sort();

  await ask({ cmd: 'credentials', username: 'admin', password: 'right' }, 'credentials');

  // Round 1: all three answer the multicast probe; two are identified, one refuses us.
  const r1 = await round();
  t.equal(r1.answer.status.lastError, null);
  t.equal(r1.answer.status.answered, 3, 'three cameras answered the multicast probe');
  const failed = r1.changes.find((c) => c.camera.key.startsWith('ep-'));
  t.same(kinds(r1.changes), [`found ${failed?.camera.key}`, 'found mac-02560a000001', 'found mac-02560a000002']);
  const c1 = r1.changes.find((c) => c.camera.key === 'mac-02560a000001')!.camera;
  t.match(c1, { source: 'onvif', serial: '000123456', firmware: '2.40', address: cam1.address, present: true, lastError: null });
  t.equal(c1.streamUri, `rtsp://${cam1.address}:554/Streaming/Channels/101`);
  t.match(r1.changes.find((c) => c.camera.key === 'mac-02560a000002')!.camera, { address: `${cam2.address}:8080`, lastError: null }, 'the camera 10 minutes off is identified');
  t.notOk(/unauthorized/.test(sim2!.stderr()), 'and never refused us');
  t.match(failed!.camera, { address: cam3.address, streamUri: null, lastError: { code: 'ONVIF_AUTH_FAILED' } }, 'a clear per-camera error');
  const wrongPasswordRequests = soapRequests(sim3!);
  t.ok(wrongPasswordRequests >= 2 && wrongPasswordRequests <= 5, `${wrongPasswordRequests} requests for the wrong password`);

  // Rounds 2 and 3 (well inside the 30 s backoff): nothing asked of anybody.
  const before = [soapRequests(sim1!), soapRequests(sim2!)];
  const r2 = await round();
  const r3 = await round();
  t.same([...r2.changes, ...r3.changes], [], 'no changes');
  t.equal(soapRequests(sim3!), wrongPasswordRequests, 'no retry storm: the refusing camera is not asked again within its backoff');
  t.same([soapRequests(sim1!), soapRequests(sim2!)], before, 'healthy cameras are not asked again');

  // cam1 gets a new address (a new DHCP lease) between rounds: same key, address_changed.
  const newAddress = `10.77.${lan.subnet}.77`;
  await lan.setAddress('cam1', newAddress);
  const r4 = await round();
  t.same(kinds(r4.changes), ['address_changed mac-02560a000001']);
  const moved = r4.changes[0]!;
  t.equal(moved.previousAddress, firstAddress);
  t.equal(moved.camera.address, newAddress);
  t.equal(moved.camera.streamUri, `rtsp://${newAddress}:554/Streaming/Channels/101`);
  const list = (await ask<{ cameras: CameraRecord[] }>({ cmd: 'list' }, 'list')).answer.cameras;
  t.equal(list.filter((c) => c.serial === '000123456').length, 1, 'one record for the camera, not two');

  // cam2 is switched off: missing from two rounds, it is lost (and kept).
  await sim2!.stop();
  const r5 = await round();
  const r6 = await round();
  t.same(kinds([...r5.changes, ...r6.changes]), ['lost mac-02560a000002']);
  const after = (await ask<{ cameras: CameraRecord[] }>({ cmd: 'list' }, 'list')).answer.cameras;
  t.match(after.find((c) => c.key === 'mac-02560a000002'), { present: false });
});
