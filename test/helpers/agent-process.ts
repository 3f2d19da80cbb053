// The real agent as a child process (the built CLI), for drills that kill, signal and restart
// it. Logs (pino JSON lines) are collected so tests can wait for and assert on them.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Teardown } from './tmp.js';

const CLI = fileURLToPath(new URL('../../agent/dist/cli.js', import.meta.url));

export interface AgentLogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** What the agent's "agent started" log line carries (agent.ts, Agent.run). */
export interface AgentStartedFields {
  lastReboot: { reason: string; detail: string | null };
  lastExit: { reason: string; detail: string | null; at: number } | null;
  firmware: { version: string | null; slot: 'A' | 'B' | null; trial: boolean };
  verdict: { verdict: string; reason: string | null };
}

/** The "agent started" fields of a log line (typed view; the line is JSON). */
export const startedFields = (l: object): AgentStartedFields => l as AgentStartedFields;

export interface AgentProcess {
  child: ChildProcess;
  logs: AgentLogLine[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog(pred: (l: AgentLogLine) => boolean, timeoutMs?: number): Promise<AgentLogLine>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): Promise<void>;
}

/** Writes the agent's config file (and a fake board serial) into `dataDir`; returns its path. */
export function writeAgentConfig(dataDir: string, config: Record<string, unknown>): string {
  mkdirSync(dataDir, { recursive: true });
  const serial = join(dataDir, 'board-serial');
  writeFileSync(serial, '10000000c0ffee00\n');
  const file = join(dataDir, 'agent.json');
  // Discovery off unless a test turns it on (inside its own network namespaces): tests send
  // nothing beyond loopback, and multicast probes would reach this machine's LAN.
  // The status page on loopback, any free port: agents of tests running at once do not collide.
  // No status light: a test never blinks this machine's LEDs.
  const defaults = { dataDir, serialSources: [serial], discovery: { enabled: false }, local: { host: '127.0.0.1', port: 0 }, statusLight: { led: '' } };
  writeFileSync(file, JSON.stringify({ ...defaults, ...config }, null, 2));
  return file;
}

/**
 * Starts the agent. `command` is the CLI command, with its own options if an array
 * (`['doctor', '--json']`). `prefix` runs it through another command first, e.g. a network
 * namespace's `ip netns exec NAME` (which execs, so the child is still the agent itself).
 */
export function startAgentProcess(t: Teardown, configFile: string, env: NodeJS.ProcessEnv = {}, command: string | string[] = 'run', prefix: string[] = []): AgentProcess {
  const [cmd, ...args] = [...prefix, process.execPath, CLI, ...[command].flat(), '--config', configFile];
  const child = spawn(cmd!, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VIGIL_LOG_LEVEL: 'debug', ...env },
  });
  const logs: AgentLogLine[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as AgentLogLine);
    } catch {
      logs.push({ level: 30, msg: line });
    }
    for (const w of waiters) w();
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
  // 'close', not 'exit': by then every line the agent wrote has been read.
  const exited = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.on('exit', killOnExit);
  // Gone already: nothing to kill (a drill that starts twenty agents in one test keeps no listeners)
  void exited.then(() => process.off('exit', killOnExit));
  t.teardown(async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    logs,
    exited,
    waitForLog(pred, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = logs.find(pred);
          if (hit) {
            done();
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no matching agent log within ${timeoutMs} ms; last logs: ${logs.slice(-8).map((l) => l.msg).join(' | ')}; stderr: ${stderr.slice(-5).join(' | ')}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        void exited.then(() => {
          if (waiters.has(check)) {
            done();
            reject(new Error(`agent exited; stderr: ${stderr.slice(-5).join(' | ')}`));
          }
        });
        check();
      });
    },
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
