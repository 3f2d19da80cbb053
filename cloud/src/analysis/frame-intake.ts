import { dhash, hammingDistance, jpegProblem } from '@vigil/protocol';
import sharp from 'sharp';
import type { AnalysisCameraState, IntakeDecision } from '../store/analysis-types.js';
import type { AnalysisSettings } from './settings.js';

// The first step for every compressed frame: is it a complete JPEG, and is it different enough
// from the camera's last analysed frame to be worth analysing? The dHash is computed here from
// the stored bytes (what the device sent is not trusted for this), on a 17×16 thumbnail: 256
// bits. The device's 4096-bit hash (65×64) is right for what it is used for — telling a frozen
// camera's identical frames apart from live ones — but too fine for dedupe: sensor noise alone
// flips 5–7 % of its bits on a textured scene, about as many as a person walking in at a
// distance. At 16×16 each bit averages a 40×22-pixel block of a 640×360 frame: noise flips at
// most 4 bits in good light and 7 in half the light, a person a third of the frame high 11–27,
// a close one 26–38 (measured on the sequences of analysis-dedupe.test.ts). A person far away
// (a sixth of the frame high: 5–9 bits) may wait for a step closer or the periodic re-analysis;
// a camera that must see them gets a lower threshold.

/** The dedupe hash's thumbnail: 17×16 → 16×16 = 256 bits. */
export const DEDUPE_HASH_WIDTH = 17;
export const DEDUPE_HASH_HEIGHT = 16;
export const DEDUPE_HASH_BITS = (DEDUPE_HASH_WIDTH - 1) * DEDUPE_HASH_HEIGHT;

export type Inspection = { ok: true; dhash: string } | { ok: false; reason: string };

/** Checks the bytes decode as a whole JPEG and hashes them. Never throws. */
export async function inspectFrame(bytes: Buffer): Promise<Inspection> {
  const problem = jpegProblem(bytes);
  if (problem === 'empty') return { ok: false, reason: 'the object is empty' };
  if (problem === 'not_jpeg') return { ok: false, reason: 'not a JPEG (no start-of-image marker)' };
  if (problem === 'truncated') return { ok: false, reason: 'truncated JPEG (no end-of-image marker)' };
  try {
    // failOn 'truncated': a JPEG whose entropy-coded data stops early fails here, not later.
    const gray = await sharp(bytes, { failOn: 'truncated' }).resize(DEDUPE_HASH_WIDTH, DEDUPE_HASH_HEIGHT, { fit: 'fill' }).grayscale().raw().toBuffer();
    return { ok: true, dhash: dhash(gray, DEDUPE_HASH_WIDTH, DEDUPE_HASH_HEIGHT) };
  } catch (err) {
    return { ok: false, reason: `the JPEG does not decode: ${(err as Error).message}` };
  }
}

/**
 * Dedupe. A frame goes to analysis when it is the camera's first, when its dHash is at least
 * `dedupeThreshold` bits from the reference (the last frame admitted), or when the reference
 * is older than `reanalyseAfterS` (a static scene is still looked at now and then). Otherwise it
 * is a duplicate: skipped and counted.
 *
 * A global brightness change keeps most of a dHash, which compares neighbouring blocks rather
 * than absolute values: lights at half (4–7 bits, measured) are the same scene and skipped. A
 * camera switching to infrared changes the picture's structure (13–16 bits): its first frame is
 * analysed and becomes the reference, so the infrared frames after it are duplicates again
 * (analysis-dedupe.test.ts). Lights going fully on or off in a closed shop changes far more.
 */
export function decideIntake(state: AnalysisCameraState | null, capturedAt: number, inspection: Inspection, s: AnalysisSettings): IntakeDecision {
  if (!inspection.ok) return { kind: 'invalid', reason: inspection.reason };
  const ref = state?.refDhash ?? null;
  if (ref === null || state === null || state.refCapturedAt === null) return { kind: 'batched', distance: null, reason: 'first', dhash: inspection.dhash };
  const distance = hammingDistance(inspection.dhash, ref);
  if (distance >= s.dedupeThreshold) return { kind: 'batched', distance, reason: 'changed', dhash: inspection.dhash };
  if (s.reanalyseAfterS > 0 && Math.abs(capturedAt - state.refCapturedAt) >= s.reanalyseAfterS * 1000) {
    return { kind: 'batched', distance, reason: 'periodic', dhash: inspection.dhash };
  }
  return { kind: 'duplicate', distance };
}
