// Where a benchmark's CPU goes, read from /proc (Linux): a process's ticks, a PostgreSQL
// cluster's, the machine's, a thread's run-queue wait, and how often a thread is blocked on disk.
import { readdirSync, readFileSync } from 'node:fs';

export const CLOCK_TICKS_PER_S = 100;
/** How often a main thread's state is sampled (R running, S waiting for I/O events, D in the kernel on disk). */
const STATE_SAMPLE_MS = 20;

/** utime + stime (and, with `children`, what waited-for children used) of a process, in ticks. */
export function cpuTicks(pid: number, children = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": state is [0], utime [11], stime [12], cutime [13], cstime [14].
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return f[11]! + f[12]! + (children ? f[13]! + f[14]! : 0);
  } catch {
    return 0; // gone
  }
}

/** The PostgreSQL cluster listening on `port`: its postmaster, found by its command line. */
export function postmasterPid(port: number): number {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (argv[0]!.endsWith('/postgres') && argv.includes(`port=${port}`)) return Number(p);
    } catch {
      // gone
    }
  }
  throw new Error(`no postgres process on port ${port}`);
}

/**
 * The whole cluster's CPU: the postmaster with what its exited children used (backends, once
 * waited for, land in its cutime/cstime) plus every live child. A backend that exits during the
 * window moves from the second sum to the first, so the difference of two samples stays right.
 */
export function clusterTicks(postmaster: number): number {
  let t = cpuTicks(postmaster, true);
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) t += cpuTicks(Number(p));
    } catch {
      // gone
    }
  }
  return t;
}

/** Busy ticks of the whole machine (all cores). */
export function machineTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  return f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
}

/**
 * A thread's time on a CPU and waiting on the run queue for one (ns): for the main thread,
 * the JS event loop. Run-queue time is the machine's other work taking the core away.
 */
export function schedstat(pid: number): { cpu: number; wait: number } {
  const [cpu, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { cpu: cpu!, wait: wait! };
}

/**
 * Samples the state of a process's main thread: the share of samples in D (uninterruptible,
 * in practice an fsync or a read from disk) is the share of time the event loop was blocked
 * on the disk — better-sqlite3 commits synchronously on the loop — which no CPU figure shows.
 */
export function sampleStates(pid: number): () => { samples: number; disk: number } {
  let samples = 0;
  let disk = 0;
  const timer = setInterval(() => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      samples++;
      if (stat[stat.lastIndexOf(')') + 2] === 'D') disk++;
    } catch {
      // gone
    }
  }, STATE_SAMPLE_MS);
  return () => {
    clearInterval(timer);
    return { samples, disk };
  };
}

export function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}
