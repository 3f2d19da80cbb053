// The QEMU system-test harness: builds the test image (board/qemu/build-image.sh), makes a
// per-test copy of the SD card with the agent's config on its data partition, boots it
// (board/qemu/run.sh plays the Pi firmware), reads the serial console, talks to the guest's
// control channel, cuts the power (SIGKILL of QEMU), and inspects the data partition from the
// host without mounting it (disk.ts). docs/system-tests.md says what is real.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AgentLogLine } from '../helpers/agent-process.ts';
import type { Teardown } from '../helpers/tmp.ts';
import { isAlive } from '../helpers/process.ts';
import type { Disk } from './disk.ts';

const run = promisify(execFile);

export const TOP = fileURLToPath(new URL('../../', import.meta.url));
export const IMAGE_DIR = join(TOP, 'build/qemu/images');
/** Serial console logs of the last run of each boot, kept for a person to read after a failure. */
export const LOG_DIR = join(TOP, 'build/qemu/logs');
const BUILD_SCRIPT = join(TOP, 'board/qemu/build-image.sh');
const RUN_SCRIPT = join(TOP, 'board/qemu/run.sh');
/** A cold build downloads ~190 MB of .debs and unpacks them; a warm one takes ~0.1 s. */
const BUILD_TIMEOUT_MS = 15 * 60_000;
/** Under TCG on 2 shared cores a boot to the agent takes 5-15 s; this leaves room for load. */
export const BOOT_TIMEOUT_MS = 90_000;
/** Where the guest finds the host's servers (board/qemu/run.sh, VIGIL_QEMU_FORWARD). */
export const GUEST_CLOUD = { addr: '10.0.2.100', port: 80 };
export const GUEST_CAMERA = { addr: '10.0.2.101', port: 554 };

export interface ImageInfo {
  image: string;
  sizes: Record<string, string>;
  buildMs: number;
}

/** Builds the image (incremental: a no-op when nothing changed) and returns its path and sizes. */
export async function buildImage(): Promise<ImageInfo> {
  const t0 = performance.now();
  try {
    await run('sh', [BUILD_SCRIPT], { cwd: TOP, timeout: BUILD_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`board/qemu/build-image.sh failed: ${e.stderr?.trim().split('\n').slice(-15).join('\n') || e.message}`);
  }
  const sizes: Record<string, string> = {};
  for (const line of readFileSync(join(IMAGE_DIR, 'sizes.txt'), 'utf8').split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v) sizes[k] = v;
  }
  return { image: join(IMAGE_DIR, 'sdcard.img'), sizes, buildMs: performance.now() - t0 };
}

const BUNDLE_SCRIPT = join(TOP, 'board/qemu/build-bundle.sh');

/**
 * A signed RAUC bundle of the test image's own slot contents with `version` as its firmware
 * version (board/qemu/build-bundle.sh; cached: a no-op when made before from the same image).
 * `extraDir` is laid over its rootfs (e.g. a broken /etc/default/vigil-agent).
 */
export async function buildBundle(version: string, extraDir?: string): Promise<{ path: string; buildMs: number }> {
  const t0 = performance.now();
  try {
    const { stdout } = await run('sh', [BUNDLE_SCRIPT, version, ...(extraDir ? [extraDir] : [])], {
      cwd: TOP,
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { path: resolve(TOP, stdout.trim().split('\n').at(-1)!), buildMs: performance.now() - t0 };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`board/qemu/build-bundle.sh failed: ${e.stderr?.trim().split('\n').slice(-15).join('\n') || e.message}`);
  }
}

export interface SerialLine {
  /** ms since QEMU was started */
  at: number;
  text: string;
}

export interface TimedAgentLog extends AgentLogLine {
  /** ms since QEMU was started (when the line reached the serial console) */
  at: number;
}

export interface BootOptions {
  /** Guest `addr:port` -> host port on 127.0.0.1. */
  forward?: Record<string, number>;
  /** More kernel parameters. VIGIL_LOG_LEVEL=debug is always added (init passes it on). */
  append?: string;
  /** The serial log is written to LOG_DIR/<name>.log when QEMU exits. */
  name?: string;
  /** Boot autoboot.txt's [tryboot] partition (the Pi firmware's one-shot flag; run.sh VIGIL_QEMU_TRYBOOT=1). */
  tryboot?: boolean;
}

/** What a `run CMD` on the control channel gave back. */
export interface RunResult {
  rc: number;
  out: string;
}

export interface Guest {
  child: ChildProcess;
  pid: number;
  lines: SerialLine[];
  agentLogs: TimedAgentLog[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first serial line (already seen or still to come) matching `re`. */
  waitForLine(re: RegExp, timeoutMs?: number, from?: number): Promise<SerialLine>;
  waitForAgentLog(pred: (l: TimedAgentLog) => boolean, timeoutMs?: number, from?: number): Promise<TimedAgentLog>;
  /** One line to the guest's control channel (/dev/hvc0). */
  send(command: string): Promise<void>;
  /** A shell command in the guest (control channel `run`): its output lines and exit status. */
  run(command: string, timeoutMs?: number): Promise<RunResult>;
  /** Power cut: SIGKILL QEMU, wait for it to be gone. */
  kill(): Promise<void>;
  /** The last serial lines, for failure messages. */
  tail(n?: number): string;
}

const AGENT_JSON = /\{"level":\d+.*\}\s*$/;

/**
 * Resolves with the first value `find` returns (checked now and whenever a waiter in `waiters`
 * is called); rejects with `failed()` once that says so, or with `timedOut()` after `timeoutMs`.
 */
export function waitOn<T>(
  waiters: Set<() => void>,
  find: () => T | undefined,
  timeoutMs: number,
  errors: { failed?: () => Error | undefined; timedOut: () => Error },
): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const hit = find();
      const err = hit === undefined ? errors.failed?.() : undefined;
      if (hit !== undefined) resolve(hit);
      else if (err) reject(err);
      else return;
      done();
    };
    const timer = setTimeout(() => {
      done();
      reject(errors.timedOut());
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    waiters.add(check);
    check();
  });
}

/** Boots the disk: `sh board/qemu/run.sh DISK` (QEMU exec'd: the child's pid is QEMU's). */
export function boot(t: Teardown, disk: Disk, opts: BootOptions = {}): Guest {
  const control = join(disk.dir, `control-${process.pid}-${Math.floor(Math.random() * 1e9)}.sock`);
  const forward = Object.entries(opts.forward ?? {})
    .map(([guest, host]) => `${guest}=${host}`)
    .join(' ');
  const append = ['VIGIL_LOG_LEVEL=debug', opts.append].filter(Boolean).join(' ');
  const t0 = performance.now();
  const child = spawn('sh', [RUN_SCRIPT, disk.path], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      VIGIL_QEMU_FORWARD: forward,
      VIGIL_QEMU_APPEND: append,
      VIGIL_QEMU_CONTROL: control,
      VIGIL_QEMU_TRYBOOT: opts.tryboot ? '1' : '0',
    },
  });
  const lines: SerialLine[] = [];
  const agentLogs: TimedAgentLog[] = [];
  const waiters = new Set<() => void>();
  const onLine = (raw: string): void => {
    const text = raw.replace(/\r/g, '');
    const at = performance.now() - t0;
    lines.push({ at, text });
    const m = AGENT_JSON.exec(text);
    if (m) {
      try {
        agentLogs.push({ ...(JSON.parse(m[0]) as AgentLogLine), at });
      } catch {
        // a kernel message cut into the line: not a log record
      }
    }
    for (const w of waiters) w();
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  let gone = false;
  void exited.then(() => {
    gone = true;
    for (const w of waiters) w();
    if (opts.name) {
      mkdirSync(LOG_DIR, { recursive: true });
      writeFileSync(join(LOG_DIR, `${opts.name}.log`), lines.map((l) => `${(l.at / 1000).toFixed(2)} ${l.text}`).join('\n') + '\n');
    }
  });
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.on('exit', killOnExit);
  t.teardown(async () => {
    process.off('exit', killOnExit);
    socket?.destroy();
    if (!gone) {
      child.kill('SIGKILL');
      await exited;
    }
  });

  const tail = (n = 25): string =>
    lines
      .slice(-n)
      .map((l) => l.text)
      .join('\n');
  const waitFor = <T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    waitOn(waiters, find, timeoutMs, {
      failed: () => (gone ? new Error(`QEMU exited before ${what}; serial console:\n${tail()}`) : undefined),
      timedOut: () => new Error(`no ${what} within ${timeoutMs} ms; serial console:\n${tail()}`),
    });

  let socket: Socket | undefined;
  const openControl = async (): Promise<Socket> => {
    const end = performance.now() + 10_000;
    for (;;) {
      if (existsSync(control)) {
        try {
          const s = connect(control);
          await once(s, 'connect');
          s.on('error', () => undefined);
          return s;
        } catch {
          // QEMU not listening yet
        }
      }
      if (gone || performance.now() > end) throw new Error(`cannot connect to the guest's control socket ${control}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  // One `run` at a time: the control script answers commands in order, on the shared console
  let runs: Promise<unknown> = Promise.resolve();
  const runOne = async (command: string, timeoutMs: number): Promise<RunResult> => {
    const from = performance.now() - t0;
    const start = lines.length;
    socket ??= await openControl();
    socket.write(`run ${command}\n`);
    const rcLine = await waitFor(
      () => lines.slice(start).find((l) => l.at >= from && /^SYSTEST_RC -?\d+$/.test(l.text)),
      timeoutMs,
      `the answer to 'run ${command}'`,
    );
    const out = lines
      .slice(start)
      .filter((l) => l.at <= rcLine.at && l.text.startsWith('SYSTEST_OUT '))
      .map((l) => l.text.slice('SYSTEST_OUT '.length))
      .join('\n');
    return { rc: Number(rcLine.text.split(' ')[1]), out };
  };

  return {
    child,
    pid: child.pid!,
    lines,
    agentLogs,
    exited,
    tail,
    waitForLine(re, timeoutMs = BOOT_TIMEOUT_MS, from = 0) {
      return waitFor(() => lines.find((l) => l.at >= from && re.test(l.text)), timeoutMs, `serial line ${re}`);
    },
    waitForAgentLog(pred, timeoutMs = BOOT_TIMEOUT_MS, from = 0) {
      return waitFor(() => agentLogs.find((l) => l.at >= from && pred(l)), timeoutMs, 'matching agent log');
    },
    async send(command) {
      socket ??= await openControl();
      socket.write(command + '\n');
    },
    run(command, timeoutMs = BOOT_TIMEOUT_MS) {
      const r = runs.then(() => runOne(command, timeoutMs));
      runs = r.catch(() => undefined);
      return r;
    },
    async kill() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** ms since QEMU started until `pred` first held in the guest's agent log (undefined if never). */
export const firstAt = (g: Guest, pred: (l: TimedAgentLog) => boolean): number | undefined => g.agentLogs.find(pred)?.at;

/** A lock file so that two test files never run QEMU at once on a 2-core machine. */
export async function qemuLock(t: Teardown, timeoutMs = 15 * 60_000): Promise<void> {
  const dir = join(TOP, 'build/qemu');
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'qemu-run.lock');
  const end = performance.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch {
      const holder = Number(readFileSafe(lock));
      if (!holder || !isAlive(holder)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (performance.now() > end) throw new Error(`QEMU lock ${lock} still held by pid ${holder}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const release = (): void => {
    if (readFileSafe(lock) === String(process.pid)) rmSync(lock, { force: true });
  };
  process.on('exit', release);
  t.teardown(() => {
    process.off('exit', release);
    release();
  });
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The agent's config on /data for a test: the host's cloud and camera as the guest sees them. */
export function guestAgentConfig(claimCode: string, cameraPaths: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cloudUrl: `http://${GUEST_CLOUD.addr}:${GUEST_CLOUD.port}`,
    dataDir: '/data/vigil',
    ffmpegPath: '/usr/bin/ffmpeg',
    claimCode,
    // QEMU's virt machine has no device-tree serial number: the board serial is a file on /data
    serialSources: ['/data/vigil/board-serial'],
    cameras: cameraPaths.map((p, i) => ({ id: `cam${i + 1}`, url: `rtsp://${GUEST_CAMERA.addr}:${GUEST_CAMERA.port}${p}` })),
    ...extra,
  };
}

/** The forwarding rules for `boot`: the guest's cloud and camera addresses to the host's ports. */
export function forwardTo(cloudPort: number, cameraPort: number): Record<string, number> {
  return {
    [`${GUEST_CLOUD.addr}:${GUEST_CLOUD.port}`]: cloudPort,
    [`${GUEST_CAMERA.addr}:${GUEST_CAMERA.port}`]: cameraPort,
  };
}
