// A test double of a vision model, in process: it answers every batch with the assessment the
// test sets (critical by default) after an optional delay, and counts what it was asked. Not a
// model; for the tests and benchmarks that are about what happens around the answer.
import type { Analyser, AnalysisInput, AnalysisResult, SceneAssessment } from '../../src/analysis/analyser.js';

export class FixedAnalyser implements Analyser {
  readonly name = 'fixed-test-double';
  assessment: SceneAssessment = {
    riskScore: 90,
    level: 'critical',
    summary: 'A person is inside the closed shop.',
    reasoning: 'Scripted by the test.',
    observations: ['one person'],
  };
  /** How long each answer takes (real time). */
  delayMs = 0;
  calls = 0;
  frames = 0;
  inFlight = 0;
  maxInFlight = 0;

  async analyse(input: AnalysisInput): Promise<AnalysisResult> {
    this.calls++;
    this.frames += input.frames.length;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      return { assessment: { ...this.assessment }, offSpec: null, model: this.name, attempts: 1, latencyMs: this.delayMs, usage: null };
    } finally {
      this.inFlight--;
    }
  }
}
