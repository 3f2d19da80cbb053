// What `vigil-agent doctor` found, and how it is shown: one finding per check, each OK, WARN,
// FAIL or SKIP, with the fact and — when it is not OK — what to do, for a technician on site.
//
// FAIL: the site is not doing its job (no picture from a camera, nothing can upload, no valid
//       token, no data disk); the exit code is 1.
// WARN: it works, but something is degraded or needs a look soon (clock not synchronised,
//       uploads behind, dead letters, a reverted update, disk nearly full); exit code 0.
// SKIP: the check could not be made because another one failed (the token when the cloud
//       cannot be reached); never on its own a reason for exit code 1.

export type Level = 'ok' | 'warn' | 'fail' | 'skip';

export interface Finding {
  /** cameras, frame, cloud, token, clock, queue, dead_letters, firmware, update, disk */
  check: string;
  level: Level;
  /** What was found, in words. */
  fact: string;
  /** What to do about it; null when it is OK. */
  todo: string | null;
  /** The facts as values, for --json. */
  data: Record<string, unknown>;
}

export interface DoctorReport {
  /** Epoch ms when the checks started. */
  at: number;
  /** 'attention' when any check failed. */
  status: 'ok' | 'attention';
  checks: Finding[];
}

/** All is well; something needs attention (a FAIL). A bad command line is 2 (cli.ts). */
export const EXIT_OK = 0;
export const EXIT_ATTENTION = 1;

export function finding(check: string, level: Level, fact: string, todo: string | null = null, data: Record<string, unknown> = {}): Finding {
  return { check, level, fact, todo: level === 'ok' ? null : todo, data };
}

export function report(at: number, checks: Finding[]): DoctorReport {
  return { at, status: checks.some((c) => c.level === 'fail') ? 'attention' : 'ok', checks };
}

export function exitCode(r: DoctorReport): number {
  return r.status === 'ok' ? EXIT_OK : EXIT_ATTENTION;
}

const LABEL: Record<Level, string> = { ok: 'OK', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

/** One line per check, the remedy indented under anything not OK, a summary at the end. */
export function formatText(r: DoctorReport): string {
  const lines = [`vigil-agent doctor, ${new Date(r.at).toISOString()}`];
  const width = Math.max(...r.checks.map((c) => c.check.length));
  for (const c of r.checks) {
    // One line per check: ffmpeg's stderr and the like come in several lines.
    lines.push(`${LABEL[c.level].padEnd(4)}  ${c.check.padEnd(width)}  ${c.fact.replace(/\s*\n\s*/g, ' | ')}`);
    if (c.todo) lines.push(`${' '.repeat(width + 8)}→ ${c.todo}`);
  }
  const count = (l: Level): number => r.checks.filter((c) => c.level === l).length;
  const fails = count('fail');
  const warns = count('warn');
  lines.push(
    fails > 0
      ? `NEEDS ATTENTION: ${fails} check${fails === 1 ? '' : 's'} failed${warns ? `, ${warns} warning${warns === 1 ? '' : 's'}` : ''}`
      : `ALL WELL${warns ? ` (${warns} warning${warns === 1 ? '' : 's'})` : ''}`,
  );
  return lines.join('\n');
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[i]}`;
}

/** 4_000 → "4 s", 7_500_000 → "2 h 5 min". */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} days`;
}
