// Test cameras on loopback: a real RTSP server (tools/rtsp-camera.py, gst-rtsp-server) and
// a "camera" that accepts TCP and never sends a byte. Both are torn down when the test ends.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Teardown } from './tmp.js';

const SCRIPT = fileURLToPath(new URL('../../tools/rtsp-camera.py', import.meta.url));
// GStreamer's Python bindings live in Debian's python, not in a pyenv/venv python on PATH.
const PYTHON = process.env.VIGIL_TEST_PYTHON ?? '/usr/bin/python3';
const READY_TIMEOUT_MS = 15_000;
const SIGNAL_ACK_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = 3_000;

export interface RtspCameraOptions {
  /** Mount points, optionally `path:pattern` (videotestsrc pattern). Default `['/cam']`. */
  mounts?: string[];
  /** `WIDTHxHEIGHT`, default 640x360. */
  size?: string;
  fps?: number;
  /** Require these credentials (passed to the server through its environment). */
  auth?: { username: string; password: string; method?: 'digest' | 'basic' };
  startStalled?: boolean;
}

export interface RtspCamera {
  port: number;
  pid: number;
  /** `rtsp://127.0.0.1:PORT/mount` (no credentials); mount defaults to the first one. */
  url(mount?: string): string;
  /** Stop sending frames, keep TCP open; resolves when the server confirms. */
  stall(): Promise<void>;
  resume(): Promise<void>;
  /** Keep sending frames, all of one still picture; resolves when the server confirms. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  stop(): Promise<void>;
}

export async function startRtspCamera(t: Teardown, opts: RtspCameraOptions = {}): Promise<RtspCamera> {
  const mounts = opts.mounts ?? ['/cam'];
  const args = [SCRIPT, '--port', '0', '--size', opts.size ?? '640x360'];
  for (const m of mounts) args.push('--mount', m);
  if (opts.fps) args.push('--fps', String(opts.fps));
  if (opts.startStalled) args.push('--start-stalled');
  const env = { ...process.env };
  if (opts.auth) {
    env.RTSP_USER = opts.auth.username;
    env.RTSP_PASS = opts.auth.password;
    env.RTSP_AUTH = opts.auth.method ?? 'digest';
  }

  const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const pid = child.pid;
  // Last resort if the test process dies without running teardowns.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);
  let spawnError: Error | null = null;
  child.once('error', (err) => (spawnError = err));
  // 'close' also comes after a failed spawn, where 'exit' may not.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));

  // Each stdout line resolves the oldest waiter for it ("ready ...", "stalled", "resumed").
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const i = waiters.findIndex((w) => line.startsWith(w.prefix));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(line);
  });
  const waitLine = (prefix: string, ms: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`rtsp-camera: no "${prefix}" within ${ms} ms; stderr: ${stderr}`)), ms);
      waiters.push({
        prefix,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`rtsp-camera exited before "${prefix}" (code ${child.exitCode}); stderr: ${stderr}`));
      });
    });

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      process.off('exit', killOnExit);
    })());
  t.teardown(stop);

  if (pid === undefined) {
    await stop();
    throw new Error(`rtsp-camera: cannot start ${PYTHON}: ${String(spawnError)}`);
  }
  let ready: string;
  try {
    ready = await waitLine('ready ', READY_TIMEOUT_MS);
  } catch (err) {
    await stop();
    throw err;
  }
  const base = ready.slice('ready '.length).trim();
  const port = Number(new URL(base).port);
  const mountPath = (m: string): string => m.split(':')[0]!;
  const signalAndWait = async (sig: NodeJS.Signals, ack: string): Promise<void> => {
    const acked = waitLine(ack, SIGNAL_ACK_TIMEOUT_MS);
    child.kill(sig);
    await acked;
  };

  return {
    port,
    pid,
    url: (mount = mountPath(mounts[0]!)) => `${base}${mount}`,
    stall: () => signalAndWait('SIGUSR1', 'stalled'),
    resume: () => signalAndWait('SIGUSR2', 'resumed'),
    freeze: () => signalAndWait('SIGHUP', 'frozen'),
    thaw: () => signalAndWait('SIGWINCH', 'thawed'),
    stop,
  };
}

export interface SilentCamera {
  port: number;
  url(mount?: string): string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections the client has not closed yet. */
  readonly open: number;
  stop(): Promise<void>;
}

/**
 * A "camera" that accepts TCP connections and never sends a byte (the hung camera of the
 * drills). A Node server rather than `nc -lk`: it listens on port 0 (no guessed, racy port),
 * needs no external tool, counts connections so a test can see the client hang up, and is
 * closed in-process at teardown.
 */
export async function startSilentCamera(t: Teardown): Promise<SilentCamera> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.resume(); // read and discard whatever the client says
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('silent camera: no TCP address');
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }));
  t.teardown(stop);
  return {
    port: address.port,
    url: (mount = '/cam') => `rtsp://127.0.0.1:${address.port}${mount}`,
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size;
    },
    stop,
  };
}
