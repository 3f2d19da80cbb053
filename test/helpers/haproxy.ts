// HAProxy (Debian's, installed by scripts/deps.sh) as the one address in front of several
// cloud replicas, configured as a deployment would be: round robin, health checks on /healthz,
// a request whose replica vanished before answering is tried on another one.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { tmpDir, type Teardown } from './tmp.js';
import { waitFor } from './wait.js';

export interface Balancer {
  url: string;
  /** haproxy's stderr, for failures. */
  log: string[];
}

/** The config; `backends` are host:port. */
export function haproxyConfig(port: number, backends: string[]): string {
  return [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout http-keep-alive 10s',
    // A replica that dies with a request in flight gave no answer: try the request on another.
    // The device API is idempotent (presign, complete and heartbeat may be repeated), so a
    // repeat is safe; a replica that answered is never retried.
    '  retries 3',
    '  option redispatch',
    '  retry-on conn-failure empty-response',
    'frontend vigil',
    `  bind 127.0.0.1:${port}`,
    '  default_backend replicas',
    'backend replicas',
    '  balance roundrobin',
    '  option httpchk GET /healthz',
    '  default-server inter 500ms fall 2 rise 2',
    ...backends.map((b, i) => `  server r${i + 1} ${b} check`),
    '',
  ].join('\n');
}

export async function startHaproxy(t: Teardown, backends: string[]): Promise<Balancer> {
  const dir = await tmpDir(t, 'vigil-haproxy-');
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig(port, backends));
  // -db: stay in the foreground; -W would fork a master. Not a daemon, stopped at teardown.
  const child = spawn('/usr/sbin/haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log: string[] = [];
  child.stderr!.on('data', (b: Buffer) => log.push(...b.toString().split('\n').filter(Boolean)));
  const exited = once(child, 'close');
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.on('exit', killOnExit);
  t.teardown(async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited: ${log.join(' | ')}`);
      return (await fetch(`${url}/healthz`).then((r) => r.ok).catch(() => false)) as boolean;
    },
    10_000,
    'haproxy to answer',
  );
  return { url, log };
}
