import { z } from 'zod';
import { RISK_LEVELS, type RiskLevel, type SceneAssessment } from './analyser.js';

// The answer a vision model must give, as a JSON schema (sent as response_format) and as a zod
// schema (checked on the way back), and what is made of an answer that does not follow it.
// Such an answer is kept and flagged, never dropped: a model that writes prose around its JSON
// at 3 a.m. may still be telling us about a break-in. The salvage rules, in order:
//  1. The JSON is found: the whole answer, a ```json fence (accepted as is), or the outermost
//     {...} inside prose (flagged). No JSON at all (e.g. cut off by max_tokens): the score,
//     level and summary are read field by field from the text where they appear.
//  2. Score and level: a score is rounded and clamped to 0–100; a level is matched ignoring
//     case. Only one of them readable: the other follows from LEVEL_BANDS (the band's middle
//     score). Neither: UNREADABLE_LEVEL — someone should look, nobody is woken.
//  3. Score and level that disagree by more than LEVEL_TOLERANCE points outside the level's
//     band: the more severe of the two wins, for both (a missed intrusion costs more than a
//     false alarm), and the answer is flagged for a person to look at.
//  4. Text fields: cut to their limits; a missing summary or reasoning is said to be missing;
//     observations keep their strings (a lone string becomes a list of one).

/** The score band of each level: the prompt states it, the validator holds the model to it. */
export const LEVEL_BANDS: Readonly<Record<RiskLevel, readonly [number, number]>> = {
  low: [0, 24],
  medium: [25, 49],
  high: [50, 74],
  critical: [75, 100],
};
/** A score this far outside its level's band is a disagreement, not a judgement call. */
export const LEVEL_TOLERANCE = 10;
/** The level given to an answer whose score and level cannot be read at all. */
export const UNREADABLE_LEVEL: RiskLevel = 'medium';
export const MAX_SUMMARY_CHARS = 500;
export const MAX_REASONING_CHARS = 4_000;
export const MAX_OBSERVATIONS = 20;
export const MAX_OBSERVATION_CHARS = 300;

export const SceneAssessmentSchema = z.object({
  riskScore: z.number().int().min(0).max(100),
  level: z.enum(RISK_LEVELS),
  summary: z.string().trim().min(1).max(MAX_SUMMARY_CHARS),
  reasoning: z.string().max(MAX_REASONING_CHARS),
  observations: z.array(z.string().max(MAX_OBSERVATION_CHARS)).max(MAX_OBSERVATIONS),
});

/**
 * The same shape for response_format. The order is the order a model writes in: what it sees,
 * why, then the verdict, so the score comes after the thinking rather than before it.
 */
export const SCENE_ASSESSMENT_JSON_SCHEMA: Record<string, unknown> = {
  type: 'object',
  additionalProperties: false,
  required: ['observations', 'reasoning', 'riskScore', 'level', 'summary'],
  properties: {
    observations: { type: 'array', items: { type: 'string' }, description: `Short factual observations, at most ${MAX_OBSERVATIONS}.` },
    reasoning: { type: 'string', description: 'Why the scene is or is not a concern, considering the context and the time.' },
    riskScore: { type: 'integer', minimum: 0, maximum: 100, description: bandText() },
    level: { type: 'string', enum: [...RISK_LEVELS] },
    summary: { type: 'string', description: 'One sentence for the person who gets the alert.' },
  },
};

/** "low 0–24, medium 25–49, …": for the prompt and the schema's description. */
export function bandText(): string {
  return RISK_LEVELS.map((l) => `${l} ${LEVEL_BANDS[l][0]}-${LEVEL_BANDS[l][1]}`).join(', ');
}

export function levelForScore(score: number): RiskLevel {
  return RISK_LEVELS.find((l) => score <= LEVEL_BANDS[l][1]) ?? 'critical';
}

function bandMiddle(level: RiskLevel): number {
  const [lo, hi] = LEVEL_BANDS[level];
  return Math.round((lo + hi) / 2);
}

function severity(level: RiskLevel): number {
  return RISK_LEVELS.indexOf(level);
}

/** The assessment read from a model's answer, and what was wrong with it (empty: on spec). */
export function readAssessment(raw: string): { assessment: SceneAssessment; problems: string[] } {
  const problems: string[] = [];
  const found = findJson(raw);
  if (found.kind === 'none') {
    problems.push('the answer is not JSON');
    return { assessment: salvageFromText(raw, problems), problems };
  }
  if (found.kind === 'embedded') problems.push('the JSON came with text around it');
  const value = found.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push('the answer is JSON but not an object');
    return { assessment: salvageFromText('', problems), problems };
  }
  const strict = SceneAssessmentSchema.safeParse(value);
  if (strict.success) {
    const { riskScore, level, summary, reasoning, observations } = strict.data;
    return { assessment: reconcile(riskScore, level, { summary: summary.trim(), reasoning, observations }, problems), problems };
  }
  for (const issue of strict.error.issues) problems.push(`${issue.path.join('.') || 'answer'}: ${issue.message}`);
  return { assessment: salvageFields(value as Record<string, unknown>, problems), problems };
}

type Found = { kind: 'whole' | 'fenced' | 'embedded'; value: unknown } | { kind: 'none' };

function findJson(raw: string): Found {
  const text = raw.trim();
  const whole = tryParse(text);
  if (whole.ok) return { kind: 'whole', value: whole.value };
  const fence = /^```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/i.exec(text);
  if (fence) {
    const inner = tryParse(fence[1]!);
    if (inner.ok) return { kind: 'fenced', value: inner.value };
  }
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start >= 0 && end > start) {
    const inner = tryParse(text.slice(start, end + 1));
    if (inner.ok) return { kind: 'embedded', value: inner.value };
  }
  return { kind: 'none' };
}

function tryParse(s: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(s) };
  } catch {
    return { ok: false };
  }
}

function readScore(v: unknown): number | undefined {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? Math.min(100, Math.max(0, Math.round(n))) : undefined;
}

function readLevel(v: unknown): RiskLevel | undefined {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : '';
  return (RISK_LEVELS as readonly string[]).includes(s) ? (s as RiskLevel) : undefined;
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function salvageFields(o: Record<string, unknown>, problems: string[]): SceneAssessment {
  const summary = typeof o.summary === 'string' && o.summary.trim() ? clip(o.summary.trim(), MAX_SUMMARY_CHARS) : '(the model gave no summary)';
  const reasoning = typeof o.reasoning === 'string' ? clip(o.reasoning, MAX_REASONING_CHARS) : '(the model gave no reasoning)';
  const list = Array.isArray(o.observations) ? o.observations : typeof o.observations === 'string' ? [o.observations] : [];
  const observations = list
    .filter((x): x is string => typeof x === 'string' && x.trim() !== '')
    .slice(0, MAX_OBSERVATIONS)
    .map((x) => clip(x.trim(), MAX_OBSERVATION_CHARS));
  return reconcile(readScore(o.riskScore), readLevel(o.level), { summary, reasoning, observations }, problems);
}

/** Reads what it can from an answer that is not JSON (a cut-off object, prose). */
function salvageFromText(raw: string, problems: string[]): SceneAssessment {
  const score = /"riskScore"\s*:\s*"?(-?\d+(?:\.\d+)?)/.exec(raw)?.[1];
  const level = /"level"\s*:\s*"(\w+)"/.exec(raw)?.[1];
  const summary = /"summary"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(raw)?.[1];
  let summaryText = "The model's answer could not be read.";
  if (summary !== undefined) {
    const s = tryParse(`"${summary}"`);
    if (s.ok && typeof s.value === 'string' && s.value.trim()) summaryText = clip(s.value.trim(), MAX_SUMMARY_CHARS);
  }
  return reconcile(
    readScore(score),
    readLevel(level),
    { summary: summaryText, reasoning: clip(raw.trim(), MAX_REASONING_CHARS) || '(empty answer)', observations: [] },
    problems,
  );
}

/** Rules 2 and 3: a score and a level that agree. Adds a problem when they had to be made to. */
function reconcile(
  score: number | undefined,
  level: RiskLevel | undefined,
  text: Pick<SceneAssessment, 'summary' | 'reasoning' | 'observations'>,
  problems: string[],
): SceneAssessment {
  if (score === undefined && level === undefined) {
    return { riskScore: bandMiddle(UNREADABLE_LEVEL), level: UNREADABLE_LEVEL, ...text };
  }
  if (score === undefined) return { riskScore: bandMiddle(level!), level: level!, ...text };
  if (level === undefined) return { riskScore: score, level: levelForScore(score), ...text };
  const [lo, hi] = LEVEL_BANDS[level];
  const outside = score < lo ? lo - score : score > hi ? score - hi : 0;
  if (outside <= LEVEL_TOLERANCE) return { riskScore: score, level, ...text };
  problems.push(`level ${level} and score ${score} disagree (the ${level} band is ${lo}-${hi})`);
  const byScore = levelForScore(score);
  if (severity(byScore) >= severity(level)) return { riskScore: score, level: byScore, ...text };
  return { riskScore: lo, level, ...text };
}
