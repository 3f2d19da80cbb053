// What the rest of the cloud codes against when it asks a model to judge a batch of frames: the
// input (frames and the camera's context), the assessment that comes back, and the one error
// class every analyser throws. A job queue branches on AnalysisError's code and retryable flag,
// and parks a job until retryAt when the analyser says so (breaker open, long rate limit).

export const RISK_LEVELS = ['low', 'medium', 'high', 'critical'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

export interface SceneAssessment {
  /** 0–100, an integer. */
  riskScore: number;
  level: RiskLevel;
  summary: string;
  reasoning: string;
  observations: string[];
}

export interface AnalysisFrame {
  /** Epoch ms. */
  capturedAt: number;
  /** A compressed JPEG. */
  jpeg: Buffer;
  /** What the local object detector found in this frame. */
  detections: { label: string; score: number }[];
}

export interface AnalysisInput {
  camera: { id: string; name: string; site: string; context: string | null };
  /** Local time at the site, e.g. "2026-12-06 02:14 (Sunday), Europe/Paris", and whether the site is closed now. */
  localTime: string;
  closed: boolean;
  /** Oldest first; compressed JPEGs. */
  frames: AnalysisFrame[];
}

export interface AnalysisResult {
  /** Always present: salvaged from an off-spec answer by the rules in assessment.ts. */
  assessment: SceneAssessment;
  /** Set when the answer did not follow the schema: what was wrong, and the answer as it came. */
  offSpec: { problems: string[]; raw: string } | null;
  /** The model that answered, as the server names it. */
  model: string;
  /** Calls made to the model for this result (1 unless retried). */
  attempts: number;
  /** How long the call that gave this answer took. */
  latencyMs: number;
  usage: { promptTokens: number; completionTokens: number } | null;
}

export interface Analyser {
  readonly name: string;
  analyse(input: AnalysisInput, signal?: AbortSignal): Promise<AnalysisResult>;
}

/**
 * Every way an analysis can fail. `retryable`: the same job may succeed later, so a queue keeps
 * it (at retryAt when set). `transient`: worth another attempt at once, within the same call
 * (after a backoff). `breaker`: what the outcome means to the circuit breaker — only a missing
 * or broken server counts as a failure; an answer that refuses the request (4xx) never does.
 */
export const ANALYSIS_ERRORS = {
  /** No connection to the model server (refused, reset, DNS, connect timeout). */
  ANALYSER_UNREACHABLE: { retryable: true, transient: true, breaker: 'failure' },
  /** No complete answer within the read timeout. */
  ANALYSER_TIMEOUT: { retryable: true, transient: true, breaker: 'failure' },
  /** 5xx (and 408). */
  ANALYSER_SERVER_ERROR: { retryable: true, transient: true, breaker: 'failure' },
  /** 429: the server is up but busy; its Retry-After is honoured. */
  ANALYSER_RATE_LIMITED: { retryable: true, transient: true, breaker: 'ignore' },
  /** 401/403: the API key is missing or wrong (a configuration problem). */
  ANALYSER_AUTH: { retryable: false, transient: false, breaker: 'ignore' },
  /** Any other 4xx: the server refuses this request (unknown model, too large). */
  ANALYSER_REJECTED: { retryable: false, transient: false, breaker: 'ignore' },
  /** 2xx but not a chat completion with content (an off-spec *assessment* is not an error). */
  ANALYSER_BAD_RESPONSE: { retryable: false, transient: false, breaker: 'ignore' },
  /** The input cannot be analysed (no frames). */
  ANALYSER_INPUT_INVALID: { retryable: false, transient: false, breaker: 'ignore' },
  /** The caller's signal aborted the call (shutdown): the job itself is intact. */
  ANALYSER_ABORTED: { retryable: true, transient: false, breaker: 'ignore' },
  /** The circuit breaker refuses calls until retryAt; nothing was sent. */
  ANALYSER_BREAKER_OPEN: { retryable: true, transient: false, breaker: 'ignore' },
  /** A bug: an analyser threw something that is not an AnalysisError. */
  ANALYSER_INTERNAL: { retryable: false, transient: false, breaker: 'ignore' },
} as const satisfies Record<string, { retryable: boolean; transient: boolean; breaker: 'failure' | 'ignore' }>;
export type AnalysisErrorCode = keyof typeof ANALYSIS_ERRORS;

export interface AnalysisErrorOptions {
  /** The HTTP status, when the server answered. */
  status?: number | undefined;
  /** The server's Retry-After, in ms. */
  retryAfterMs?: number | undefined;
  /** Epoch ms before which trying again is pointless (breaker open, long rate limit). */
  retryAt?: number | undefined;
  /** Calls made to the model before giving up. */
  attempts?: number | undefined;
  cause?: unknown;
}

export class AnalysisError extends Error {
  readonly code: AnalysisErrorCode;
  readonly retryable: boolean;
  readonly transient: boolean;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly retryAt: number | undefined;
  readonly attempts: number;

  constructor(code: AnalysisErrorCode, message: string, o: AnalysisErrorOptions = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'AnalysisError';
    this.code = code;
    this.retryable = ANALYSIS_ERRORS[code].retryable;
    this.transient = ANALYSIS_ERRORS[code].transient;
    this.status = o.status;
    this.retryAfterMs = o.retryAfterMs;
    this.retryAt = o.retryAt;
    this.attempts = o.attempts ?? (code === 'ANALYSER_BREAKER_OPEN' || code === 'ANALYSER_INPUT_INVALID' ? 0 : 1);
  }

  /** The same error with more facts (attempts made, when to come back). */
  with(o: Pick<AnalysisErrorOptions, 'attempts' | 'retryAt'>): AnalysisError {
    return new AnalysisError(this.code, this.message, {
      status: this.status,
      retryAfterMs: this.retryAfterMs,
      retryAt: o.retryAt ?? this.retryAt,
      attempts: o.attempts ?? this.attempts,
      cause: this.cause,
    });
  }
}

/** Anything thrown by an analyser, as an AnalysisError (a foreign throw is a bug: ANALYSER_INTERNAL). */
export function toAnalysisError(err: unknown): AnalysisError {
  if (err instanceof AnalysisError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AnalysisError('ANALYSER_INTERNAL', `the analyser failed: ${message}`, { cause: err });
}
