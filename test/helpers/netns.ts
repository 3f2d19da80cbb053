// A private LAN for one test, made of Linux network namespaces: a "lan" namespace holding a
// bridge, and one namespace per host (camera, agent, a foreign responder…) joined to it by a
// veth pair, each with an IPv4 address on 10.77.<subnet>.0/24, loopback up and a multicast
// route, so WS-Discovery multicast works inside and nowhere else. Every link is created inside
// our namespaces (`ip -n`): nothing is added to, or sent from, the host's own interfaces.
//
// Names carry the test process's pid; namespaces left by a dead test process are removed the
// next time a LAN is made. Teardown (even after a failure) kills every process still inside
// our namespaces, then deletes them. Needs root and iproute2: netnsSkipReason() says why not.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { isAlive } from './process.js';
import type { Teardown } from './tmp.js';

const run = promisify(execFile);
const PREFIX = 'vgl';
const NET = '10.77';
const FIRST_HOST_OCTET = 2;
const KILL_GRACE_MS = 2_000;
const DEFAULT_EXEC_TIMEOUT_MS = 30_000;

export interface NetnsHost {
  /** The name the test gave it ('cam', 'agent'). */
  name: string;
  /** The namespace, for `ip netns exec`. */
  ns: string;
  /** Its interface inside the namespace (always eth0). */
  iface: string;
  /** Its IPv4 address now (setAddress changes it). */
  address: string;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface ExecOptions {
  /** Written to stdin, which is then closed. */
  input?: string;
  /** SIGKILL after this long (default 30 s); the result says timedOut. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface NetnsLan {
  /** Third octet of this LAN's 10.77.x.0/24. */
  subnet: number;
  /** The namespace with the bridge. */
  lanNs: string;
  host(name: string): NetnsHost;
  hosts(): NetnsHost[];
  /** Joins another host to the LAN (next free address unless given). */
  addHost(name: string, address?: string): Promise<NetnsHost>;
  /** Command prefix that runs something inside a host: ['ip', 'netns', 'exec', ns]. */
  prefix(host: string): string[];
  /** Starts a process inside a host; it is killed at teardown if still running. */
  spawn(host: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Runs a command inside a host to completion (or its timeout) and collects its output. */
  exec(host: string, cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Gives a host a new address (the camera that changes IP overnight). */
  setAddress(host: string, address: string): Promise<void>;
  /** Kills what runs inside and deletes the namespaces (teardown does this too). */
  close(): Promise<void>;
}

export interface LanOptions {
  /** Hosts to create now, in order: .2, .3, … */
  hosts: string[];
  /** Third octet (1–254). Default: derived from `key`, so each test file gets its own. */
  subnet?: number;
  /** What to derive the subnet from; pass import.meta.url. */
  key?: string;
}

function findIp(): string | null {
  for (const p of ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']) if (existsSync(p)) return p;
  return null;
}

const IP = findIp();
let skipReason: Promise<string | null> | null = null;

/** Why network-namespace tests cannot run here, or null when they can. */
export function netnsSkipReason(): Promise<string | null> {
  skipReason ??= (async () => {
    if (process.platform !== 'linux') return 'network namespaces need Linux';
    if (process.getuid?.() !== 0) return 'network namespaces need root';
    if (!IP) return 'no ip command (Debian package iproute2)';
    const probe = `${PREFIX}-${process.pid.toString(36)}-probe`;
    try {
      await run(IP, ['netns', 'add', probe]);
      await run(IP, ['netns', 'del', probe]);
      return null;
    } catch (err) {
      return `cannot create a network namespace here: ${((err as { stderr?: string }).stderr ?? String(err)).trim()}`;
    }
  })();
  return skipReason;
}

function subnetFor(key: string): number {
  let h = 2166136261;
  for (const c of key) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return 16 + (h % 224);
}

async function ip(...args: string[]): Promise<string> {
  try {
    return (await run(IP!, args)).stdout;
  } catch (err) {
    throw new Error(`ip ${args.join(' ')}: ${((err as { stderr?: string }).stderr ?? String(err)).trim()}`);
  }
}

/** The names of all network namespaces on this machine (`ip netns list`). */
export async function namespaces(): Promise<string[]> {
  return (await ip('netns', 'list')).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

function pidsIn(ns: string): number[] {
  try {
    return execFileSync(IP!, ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kills every process inside our namespaces (all of them are this test's) and deletes them. */
function destroySync(names: string[]): void {
  for (const ns of names) {
    for (const pid of pidsIn(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const ns of names) {
    try {
      execFileSync(IP!, ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}

/** Removes namespaces that earlier test processes (now dead) left behind. */
async function reapStale(): Promise<void> {
  const stale = (await namespaces()).filter((ns) => {
    const m = new RegExp(`^${PREFIX}-([0-9a-z]+)-`).exec(ns);
    return m !== null && !isAlive(parseInt(m[1]!, 36));
  });
  if (stale.length) destroySync(stale);
}

let lanCounter = 0;

export async function createLan(t: Teardown, opts: LanOptions): Promise<NetnsLan> {
  const reason = await netnsSkipReason();
  if (reason) throw new Error(`createLan: ${reason} (check netnsSkipReason() first)`);
  await reapStale();
  const subnet = opts.subnet ?? subnetFor(opts.key ?? String(process.pid));
  if (!Number.isInteger(subnet) || subnet < 1 || subnet > 254) throw new Error(`createLan: subnet must be 1..254, got ${subnet}`);
  const tag = `${PREFIX}-${process.pid.toString(36)}-${++lanCounter}`;
  const lanNs = `${tag}-lan`;
  const hosts = new Map<string, NetnsHost>();
  const created: string[] = [];
  const children = new Set<ChildProcess>();
  let nextOctet = FIRST_HOST_OCTET;
  let closed: Promise<void> | null = null;

  // Last resort when the test process exits without running teardowns.
  const onExit = (): void => destroySync([...created].reverse());
  process.on('exit', onExit);

  const addNs = async (ns: string): Promise<void> => {
    await ip('netns', 'add', ns);
    created.push(ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  };

  const get = (name: string): NetnsHost => {
    const h = hosts.get(name);
    if (!h) throw new Error(`netns LAN has no host "${name}" (hosts: ${[...hosts.keys()].join(', ')})`);
    return h;
  };

  const lan: NetnsLan = {
    subnet,
    lanNs,
    host: get,
    hosts: () => [...hosts.values()],
    async addHost(name: string, address?: string): Promise<NetnsHost> {
      if (hosts.has(name)) throw new Error(`netns LAN already has a host "${name}"`);
      if (!/^[a-z][a-z0-9]{0,11}$/.test(name)) throw new Error(`netns host names are a-z0-9, up to 12 characters: "${name}"`);
      const addr = address ?? `${NET}.${subnet}.${nextOctet++}`;
      const ns = `${tag}-${name}`;
      const port = `v${hosts.size}`;
      await addNs(ns);
      // Both ends are born inside our namespaces: the host's eth0 never exists in the root one.
      await ip('-n', lanNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await ip('-n', lanNs, 'link', 'set', port, 'master', 'br0');
      await ip('-n', lanNs, 'link', 'set', port, 'up');
      await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0');
      const host: NetnsHost = { name, ns, iface: 'eth0', address: addr };
      hosts.set(name, host);
      return host;
    },
    prefix: (name) => [IP!, 'netns', 'exec', get(name).ns],
    spawn(name, cmd, args, spawnOpts = {}): ChildProcess {
      const child = spawn(IP!, ['netns', 'exec', get(name).ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts });
      children.add(child);
      child.once('close', () => children.delete(child));
      return child;
    },
    exec(name, cmd, args, execOpts = {}): Promise<ExecResult> {
      const child = lan.spawn(name, cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: execOpts.env ?? process.env, cwd: execOpts.cwd });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(execOpts.input ?? '');
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, execOpts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS);
      return new Promise((resolve, reject) => {
        child.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr, timedOut });
        });
      });
    },
    async setAddress(name, address): Promise<void> {
      const h = get(name);
      await ip('-n', h.ns, 'addr', 'del', `${h.address}/24`, 'dev', 'eth0');
      await ip('-n', h.ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      // The multicast route went with the old address only if it was the last one; re-add it.
      await ip('-n', h.ns, 'route', 'replace', '224.0.0.0/4', 'dev', 'eth0');
      h.address = address;
    },
    close(): Promise<void> {
      closed ??= (async () => {
        for (const c of children) c.kill('SIGTERM');
        const deadline = Date.now() + KILL_GRACE_MS;
        while (children.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        destroySync([...created].reverse());
        process.off('exit', onExit);
      })();
      return closed;
    },
  };
  t.teardown(() => lan.close());

  try {
    await addNs(lanNs);
    // No IGMP snooping: with no querier on this LAN, snooping would only get in the way.
    await ip('-n', lanNs, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    await ip('-n', lanNs, 'link', 'set', 'br0', 'up');
    for (const name of opts.hosts) await lan.addHost(name);
  } catch (err) {
    await lan.close();
    throw err;
  }
  return lan;
}
