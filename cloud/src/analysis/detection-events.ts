import { ANIMALS, PERSON, VEHICLES } from '../detect/coco.js';
import type { Detection } from '../detect/object-detector.js';
import type { NewEvent } from '../store/analysis-types.js';
import type { RiskLevel } from './analyser.js';

// Events from the local detector alone: the embedded default, and the fallback when the vision
// model refuses a batch or stays unreachable. The rules are few and said plainly, because a
// business owner must be able to predict them: what matters is who or what is there, and
// whether the site is closed.
//
//   person, site closed   → critical (90)   "a person at 02:00 in a closed shop"
//   vehicle, site closed  → medium (50)
//   animal, site closed   → low (20)
//   person, site open     → low (25)        (the dashboard shows it; no alert by default)
//   vehicle/animal, open  → low (10)

export interface DetectionSummary {
  label: string;
  /** Frames of the batch that showed it. */
  frames: number;
  maxScore: number;
}

/** Per label, in how many frames it was seen and its best score; people first, then by frames. */
export function summariseDetections(perFrame: readonly (readonly Detection[])[]): DetectionSummary[] {
  const by = new Map<string, DetectionSummary>();
  for (const frame of perFrame) {
    const seen = new Set<string>();
    for (const d of frame) {
      const s = by.get(d.label) ?? { label: d.label, frames: 0, maxScore: 0 };
      if (!seen.has(d.label)) s.frames++;
      seen.add(d.label);
      s.maxScore = Math.max(s.maxScore, Math.round(d.score * 100) / 100);
      by.set(d.label, s);
    }
  }
  return [...by.values()].sort((a, b) => Number(b.label === PERSON) - Number(a.label === PERSON) || b.frames - a.frames || a.label.localeCompare(b.label));
}

/** The most people (vehicles, animals) any single frame held. */
export function peakCounts(perFrame: readonly (readonly Detection[])[]): { people: number; vehicles: number; animals: number } {
  const peak = { people: 0, vehicles: 0, animals: 0 };
  for (const frame of perFrame) {
    peak.people = Math.max(peak.people, frame.filter((d) => d.label === PERSON).length);
    peak.vehicles = Math.max(peak.vehicles, frame.filter((d) => VEHICLES.has(d.label)).length);
    peak.animals = Math.max(peak.animals, frame.filter((d) => ANIMALS.has(d.label)).length);
  }
  return peak;
}

export interface DetectorEventInput {
  id: string;
  startedAt: number;
  endedAt: number;
  perFrame: readonly (readonly Detection[])[];
  closed: boolean;
  localTime: string;
  analysisError: string | null;
}

/** The event the rules make of the detections, or null when nothing that matters was seen. */
export function detectorEvent(i: DetectorEventInput): NewEvent | null {
  const peak = peakCounts(i.perFrame);
  const detections = summariseDetections(i.perFrame);
  let level: RiskLevel;
  let riskScore: number;
  let what: string;
  let rule: string;
  if (peak.people > 0) {
    [level, riskScore, rule] = i.closed ? ['critical', 90, 'a person'] : ['low', 25, 'a person'];
    what = peak.people === 1 ? 'A person' : `${peak.people} people`;
  } else if (peak.vehicles > 0) {
    [level, riskScore, rule] = i.closed ? ['medium', 50, 'a vehicle'] : ['low', 10, 'a vehicle'];
    what = peak.vehicles === 1 ? 'A vehicle' : `${peak.vehicles} vehicles`;
  } else if (peak.animals > 0) {
    [level, riskScore, rule] = i.closed ? ['low', 20, 'an animal'] : ['low', 10, 'an animal'];
    what = peak.animals === 1 ? 'An animal' : `${peak.animals} animals`;
  } else {
    return null;
  }
  const frames = i.perFrame.length;
  const when = i.closed ? 'while the site is closed' : 'during opening hours';
  return {
    id: i.id,
    startedAt: i.startedAt,
    endedAt: i.endedAt,
    riskScore,
    level,
    summary: `${what} seen ${when}.`,
    reasoning:
      `Local object detector over ${frames} frame${frames === 1 ? '' : 's'} at ${i.localTime}: ` +
      detections.map((d) => `${d.label} in ${d.frames} (best ${d.maxScore.toFixed(2)})`).join(', ') +
      `. Rule: ${rule} ${when} is ${level}.`,
    observations: detections.map((d) => `${d.label}: ${d.frames} of ${frames} frames, best score ${d.maxScore.toFixed(2)}`),
    detections,
    source: 'detector',
    model: null,
    offSpec: null,
    analysisError: i.analysisError,
  };
}
