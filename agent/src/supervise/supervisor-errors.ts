// The stable codes of the supervision tree, and how a crash is summarised for status and logs.
import { errorCode, VigilError } from '../lib/errors.js';

/**
 * code → retryable. None is: a spent budget means restarting at once would only repeat the
 * failure (someone above decides later), and the others are wiring bugs.
 */
export const SUPERVISOR_ERROR_RETRYABLE = {
  /** A supervisor spent its restart budget, stopped its children and gave up. */
  SUPERVISOR_GAVE_UP: false,
  /** `add()` with an id the supervisor already has. */
  SUPERVISOR_DUPLICATE_CHILD: false,
  /** A budget with a negative or fractional maxRestarts, or a period that is not > 0. */
  SUPERVISOR_BAD_BUDGET: false,
  /** `start()` on a supervisor that is already running (one tree position per instance). */
  SUPERVISOR_ALREADY_RUNNING: false,
} as const satisfies Record<string, boolean>;

export type SupervisorErrorCode = keyof typeof SUPERVISOR_ERROR_RETRYABLE;

/** Code given to a crash whose error carries none (a plain Error, a thrown string). */
export const UNCODED_CRASH = 'UNCODED';

/** Stands for the last error when a permanent child's normal return was the one too many. */
export const RETURNED_CODE = 'RETURNED';

/** What status and logs keep of a crash: its code and message, not the whole error. */
export interface CrashSummary {
  code: string;
  message: string;
}

export function summariseCrash(err: unknown): CrashSummary {
  const message = err instanceof Error ? err.message : String(err);
  return { code: errorCode(err) ?? UNCODED_CRASH, message };
}

export function supervisorError(code: Exclude<SupervisorErrorCode, 'SUPERVISOR_GAVE_UP'>, message: string): VigilError {
  return new VigilError(code, message, { retryable: SUPERVISOR_ERROR_RETRYABLE[code] });
}

/**
 * `start()` of a supervisor whose budget is spent rejects with this, after its children have
 * stopped. A parent supervisor recognises it by its code and does not restart the child.
 */
export class SupervisorGaveUpError extends VigilError {
  override readonly name = 'SupervisorGaveUpError';

  constructor(
    /** The supervisor that gave up. */
    readonly supervisor: string,
    /** The child whose crash (or return) would have exceeded the budget, and what it was. */
    readonly lastCrash: CrashSummary & { child: string },
    readonly reason: string,
    cause: unknown,
  ) {
    super('SUPERVISOR_GAVE_UP', `supervisor "${supervisor}" gave up: ${reason}`, {
      retryable: SUPERVISOR_ERROR_RETRYABLE.SUPERVISOR_GAVE_UP,
      cause,
    });
  }
}
