// mDNS end to end in a private LAN of network namespaces (test/helpers/netns.ts): the agent's
// responder (agent/src/local/mdns.ts) on a "device" host, and a phone's or laptop's queries
// from another host on the same bridge (test/e2e/fixtures/mdns-runner.ts runs each side).
//   - vigil-1a2b.local A is the device's LAN address; _http._tcp.local PTR leads to the SRV
//     with the status page's port and the host's address;
//   - a one-shot resolver (random source port, as `dig -p 5353`) gets a direct answer with
//     its query id and short TTLs;
//   - a new DHCP address is announced unasked, and answered from then on;
//   - a second device with the same name is logged as a conflict, with its address;
//   - on close a goodbye (TTL 0) goes out;
//   - port 5353 held by a socket that does not share it, and a namespace with no network at
//     all: logged once, and the responder (and so the agent) carries on without mDNS.
// Multicast never leaves the namespaces: every link is created inside them.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLan, netnsSkipReason, type NetnsLan } from '../helpers/netns.js';

const RUNNER = fileURLToPath(new URL('./fixtures/mdns-runner.ts', import.meta.url));
const NODE_ARGS = ['--experimental-strip-types', '--no-warnings', RUNNER];
const HOSTNAME = 'vigil-1a2b';
const FQDN = `${HOSTNAME}.local`;
const STATUS_PORT = 8080;
const QUERY_WAIT_MS = 1_000;
const LINE_TIMEOUT_MS = 15_000;

const lanSkip = await netnsSkipReason();

interface Rr {
  name: string;
  type: string;
  ttl: number;
  flush?: boolean;
  data: unknown;
}
interface Response {
  from: string;
  id: number;
  answers: Rr[];
  additionals: Rr[];
}
interface LogLine {
  level?: number;
  msg?: string;
  type?: string;
  [k: string]: unknown;
}

/** A runner process: its JSON lines as they come, and a wait for the first that matches. */
function watch(child: ChildProcess): { lines: LogLine[]; stderr: () => string; waitFor: (pred: (l: LogLine) => boolean, what: string) => Promise<LogLine> } {
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as LogLine);
    } catch {
      lines.push({ msg: l });
    }
    for (const w of waiters) w();
  });
  const waitFor = (pred: (l: LogLine) => boolean, what: string): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = lines.find(pred);
        if (!hit) return;
        cleanup();
        resolve(hit);
      };
      const onClose = (): void => {
        cleanup();
        reject(new Error(`runner ended before ${what}; stdout: ${JSON.stringify(lines)}; stderr: ${stderr}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${what} in ${LINE_TIMEOUT_MS} ms; stdout: ${JSON.stringify(lines)}; stderr: ${stderr}`));
      }, LINE_TIMEOUT_MS);
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
        child.off('close', onClose);
      };
      waiters.add(check);
      child.once('close', onClose);
      check();
    });
  return { lines, stderr: () => stderr, waitFor };
}

function startDevice(lan: NetnsLan, host: string, extra: Record<string, unknown> = {}): { child: ChildProcess; w: ReturnType<typeof watch> } {
  const child = lan.spawn(host, process.execPath, [...NODE_ARGS, JSON.stringify({ role: 'device', hostname: HOSTNAME, port: STATUS_PORT, ...extra })], { stdio: ['pipe', 'pipe', 'pipe'] });
  return { child, w: watch(child) };
}

async function query(lan: NetnsLan, host: string, questions: { name: string; type: string }[], oneShot = false): Promise<Response[]> {
  const r = await lan.exec(host, process.execPath, [...NODE_ARGS, JSON.stringify({ role: 'query', questions, waitMs: QUERY_WAIT_MS, oneShot })]);
  if (r.code !== 0) throw new Error(`query runner failed (${r.code}): ${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.includes('"responses"'));
  if (!line) throw new Error(`query runner printed no responses: ${r.stdout} ${r.stderr}`);
  return (JSON.parse(line) as { responses: Response[] }).responses;
}

/**
 * The records of one type and name in all responses heard, each once: the querier may also hear
 * an announcement in its window (the device announces again when its IPv6 link-local address
 * comes up a moment after the link), which repeats the same records.
 */
const records = (rs: Response[], type: string, name: string): Rr[] => {
  const seen = new Set<string>();
  return rs
    .flatMap((r) => [...r.answers, ...r.additionals])
    .filter((rr) => rr.type === type && rr.name.toLowerCase() === name.toLowerCase())
    .filter((rr) => !seen.has(JSON.stringify(rr.data)) && Boolean(seen.add(JSON.stringify(rr.data))));
};

t.test('a phone on the LAN resolves vigil-1a2b.local and finds the status page; DHCP change; conflict; goodbye', { skip: lanSkip ?? false }, async (t) => {
  const lan = await createLan(t, { hosts: ['device', 'laptop'], key: import.meta.url });
  const device = lan.host('device');
  const firstAddress = device.address;
  const { child, w } = startDevice(lan, 'device');
  const started = await w.waitFor((l) => l.type === 'started', 'started line');
  t.equal(started.active, true, 'the responder is active on a LAN with multicast');
  t.equal(started.fqdn, FQDN);

  const a = await query(lan, 'laptop', [{ name: FQDN, type: 'A' }]);
  t.same(records(a, 'A', FQDN).map((r) => r.data), [firstAddress], 'A: the device address on the LAN, only');
  t.equal(a[0]?.from, firstAddress, 'answered from the device');
  t.ok(records(a, 'A', FQDN).every((r) => r.ttl === 120 && r.flush === true), 'host records: TTL 120 s, cache-flush (unique)');

  // Upper case, as some resolvers send it: names compare case-insensitively.
  const upper = await query(lan, 'laptop', [{ name: FQDN.toUpperCase(), type: 'A' }]);
  t.same(records(upper, 'A', FQDN).map((r) => r.data), [firstAddress], 'VIGIL-1A2B.LOCAL is the same name');

  const ptr = await query(lan, 'laptop', [{ name: '_http._tcp.local', type: 'PTR' }]);
  const instance = `Vigil ${HOSTNAME}._http._tcp.local`;
  t.same(records(ptr, 'PTR', '_http._tcp.local').map((r) => r.data), [instance], 'the service list shows "Vigil vigil-1a2b"');
  const srv = records(ptr, 'SRV', instance);
  t.equal(srv.length, 1, 'the SRV comes along as an additional record');
  t.same(srv[0]?.data, { priority: 0, weight: 0, port: STATUS_PORT, target: FQDN }, 'SRV: the status page port on vigil-1a2b.local');
  t.same(records(ptr, 'A', FQDN).map((r) => r.data), [firstAddress], 'and the address of its target, so no second query is needed');
  t.equal(records(ptr, 'TXT', instance).length, 1, 'TXT record (path=/) present');

  const types = await query(lan, 'laptop', [{ name: '_services._dns-sd._udp.local', type: 'PTR' }]);
  t.same(records(types, 'PTR', '_services._dns-sd._udp.local').map((r) => r.data), ['_http._tcp.local'], 'service type enumeration lists _http._tcp');

  const none = await query(lan, 'laptop', [{ name: 'vigil-ffff.local', type: 'A' }]);
  t.same(none, [], 'another name: no answer at all');

  const oneShot = await query(lan, 'laptop', [{ name: FQDN, type: 'A' }], true);
  t.equal(oneShot.length, 1, 'a one-shot resolver gets one direct answer');
  t.equal(oneShot[0]?.id, 4242, 'with its own query id');
  t.same(records(oneShot, 'A', FQDN).map((r) => [r.data, r.ttl]), [[firstAddress, 10]], 'TTL at most 10 s (RFC 6762 §6.7)');

  // DHCP gives the device a new address: announced unasked, within the 5 s poll (+ margin).
  const listener = lan.spawn('laptop', process.execPath, [...NODE_ARGS, JSON.stringify({ role: 'listen', waitMs: 9_000 })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const heard = watch(listener);
  await heard.waitFor((l) => l.type === 'listening', 'listener ready');
  const newAddress = `10.77.${lan.subnet}.200`;
  await lan.setAddress('device', newAddress);
  const announcement = await heard.waitFor(
    (l) => l.type === 'response' && (l.answers as Rr[]).some((r) => r.type === 'A' && r.data === newAddress),
    'an announcement of the new address',
  );
  t.same((announcement.answers as Rr[]).filter((r) => r.type === 'A').map((r) => r.data), [newAddress], 'the announcement carries the new address only');
  const after = await query(lan, 'laptop', [{ name: FQDN, type: 'A' }]);
  t.same(records(after, 'A', FQDN).map((r) => r.data), [newAddress], 'and queries are answered with it: addresses are read at query time');
  await once(listener, 'close');

  // A second device whose serial ends in the same digits.
  await lan.addHost('twin');
  const twin = startDevice(lan, 'twin');
  t.teardown(() => void twin.child.kill('SIGKILL'));
  await twin.w.waitFor((l) => l.type === 'started', 'twin started');
  const conflict = await w.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('mDNS name conflict'), 'a conflict warning');
  t.equal(conflict.level, 40, 'logged as a warning');
  t.equal(conflict.other, lan.host('twin').address, 'naming the other device');
  twin.child.stdin!.end('quit\n');
  await once(twin.child, 'close');

  // Goodbye on close: TTL 0 for our records.
  const bye = lan.spawn('laptop', process.execPath, [...NODE_ARGS, JSON.stringify({ role: 'listen', waitMs: 4_000 })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const byeHeard = watch(bye);
  await byeHeard.waitFor((l) => l.type === 'listening', 'listener ready');
  child.stdin!.end('quit\n');
  await w.waitFor((l) => l.type === 'closed', 'closed line');
  const goodbye = await byeHeard.waitFor((l) => l.type === 'response' && l.from === newAddress && (l.answers as Rr[]).some((r) => r.type === 'A'), 'the goodbye');
  t.ok((goodbye.answers as Rr[]).every((r) => r.ttl === 0), 'every record in the goodbye has TTL 0');
  t.same((goodbye.answers as Rr[]).filter((r) => r.type === 'SRV').length, 1, 'the service is withdrawn too');
  await once(child, 'close');
  t.equal(child.exitCode, 0, 'the device process ended cleanly');
});

t.test("as a part of the agent's supervision tree: answers while running, goodbye when its signal aborts", { skip: lanSkip ?? false }, async (t) => {
  const lan = await createLan(t, { hosts: ['device', 'laptop'], key: `${import.meta.url}#service` });
  const { child, w } = startDevice(lan, 'device', { service: true });
  await w.waitFor((l) => l.msg === `mDNS: answering for ${FQDN}`, 'the answering line');
  const a = await query(lan, 'laptop', [{ name: FQDN, type: 'A' }]);
  t.same(records(a, 'A', FQDN).map((r) => r.data), [lan.host('device').address], 'A: the device address');
  const bye = lan.spawn('laptop', process.execPath, [...NODE_ARGS, JSON.stringify({ role: 'listen', waitMs: 4_000 })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const byeHeard = watch(bye);
  await byeHeard.waitFor((l) => l.type === 'listening', 'listener ready');
  child.stdin!.end('quit\n');
  const goodbye = await byeHeard.waitFor((l) => l.type === 'response' && (l.answers as Rr[]).some((r) => r.type === 'A' && r.ttl === 0), 'the goodbye');
  t.ok((goodbye.answers as Rr[]).every((r) => r.ttl === 0), 'goodbye on abort: every record TTL 0');
  await w.waitFor((l) => l.type === 'closed', 'closed line (start() returned)');
  t.ok(await w.waitFor((l) => l.msg === 'mDNS stopped', 'the stopped line'), 'the socket was closed before start() returned');
  await once(child, 'close');
  t.equal(child.exitCode, 0);
});

t.test('port 5353 held by a socket that does not share it: logged once, agent goes on without mDNS', { skip: lanSkip ?? false }, async (t) => {
  const lan = await createLan(t, { hosts: ['device'], key: `${import.meta.url}#busy` });
  const { child, w } = startDevice(lan, 'device', { occupy: true });
  const started = await w.waitFor((l) => l.type === 'started', 'started line');
  t.equal(started.active, false, 'inactive responder, no throw');
  // The log line may reach the pipe just after the runner's own 'started' line: wait for it.
  const isOff = (l: LogLine) => typeof l.msg === 'string' && l.msg.startsWith('mDNS is off');
  const off = await w.waitFor(isOff, 'the mDNS-off line');
  t.match(off.msg, /EADDRINUSE.*still reachable by IP address/, 'says why and what still works');
  child.stdin!.end('quit\n');
  await w.waitFor((l) => l.type === 'closed', 'closed line');
  await once(child, 'close');
  t.equal(w.lines.filter(isOff).length, 1, 'one clear log line, for the whole run');
  t.equal(child.exitCode, 0);
});

const unshareSkip = ((): string | null => {
  if (process.platform !== 'linux') return 'unshare needs Linux';
  const r = spawnSync('unshare', ['-rn', 'true'], { stdio: 'ignore' });
  return r.status === 0 ? null : 'unshare -rn is not available here (util-linux, user namespaces)';
})();

t.test('no network at all (a namespace with loopback down): logged once, no throw, closes cleanly', { skip: unshareSkip ?? false }, async (t) => {
  // A fresh namespace of our own: nothing in it is up, so no multicast route exists.
  const child = spawn('unshare', ['-rn', process.execPath, ...NODE_ARGS, JSON.stringify({ role: 'device', hostname: HOSTNAME, port: STATUS_PORT })], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  const w = watch(child);
  const started = await w.waitFor((l) => l.type === 'started', 'started line');
  t.equal(started.active, true, 'the socket opens (bind needs no route)');
  const notSent = await w.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('mDNS announcement not sent'), 'the no-route warning');
  t.match(notSent.msg, /ENETUNREACH|EADDRNOTAVAIL|ENODEV/, 'names the socket error');
  // The second announcement (1 s later) fails the same way and is not logged again.
  await new Promise((r) => setTimeout(r, 1_500));
  t.equal(w.lines.filter((l) => typeof l.msg === 'string' && l.msg.includes('not sent')).length, 1, 'logged once, not per packet');
  child.stdin!.end('quit\n');
  await w.waitFor((l) => l.type === 'closed', 'closed line');
  await once(child, 'close');
  t.equal(child.exitCode, 0, 'no crash');
});
