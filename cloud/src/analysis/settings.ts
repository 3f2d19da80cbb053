import { z } from 'zod';
import { RISK_LEVELS } from './analyser.js';
import { DEDUPE_HASH_BITS } from './frame-intake.js';
import { parseHours } from './hours.js';

// How a camera's frames are analysed and its events alerted: cloud-wide defaults, overridden
// per site, then per camera (a camera's value wins). Overrides are stored as JSON and checked
// here, both when written (the admin API refuses a bad value, naming it) and when read.

const hours = z
  .string()
  .refine((s) => parseHours(s) !== null, 'must be HH:MM-HH:MM (24 h, may span midnight), e.g. 22:00-07:00')
  .nullable();

const timezone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone such as Europe/Paris or UTC');

export const AnalysisSettingsSchema = z
  .object({
    /** Dedupe: a frame fewer than this many dHash bits (of 256) from the reference is skipped; 0 = no dedupe. */
    dedupeThreshold: z.number().int().min(0).max(DEDUPE_HASH_BITS),
    /** A static scene is still analysed at least this often. */
    reanalyseAfterS: z.number().int().min(0),
    /** Changed frames within this span of capture times go into one batch; 0 = each frame alone, at once. */
    batchWindowS: z.number().int().min(0).max(3600),
    /** A batch closes when no frame joined it for this long. */
    batchIdleS: z.number().int().min(1).max(3600),
    /** A batch closes when it holds this many frames. */
    batchMaxFrames: z.number().int().min(1).max(50),
    /** A change this large (dHash bits) goes to the vision model even when the detector saw nothing. */
    largeChangeDistance: z.number().int().min(1).max(DEDUPE_HASH_BITS),
    /** Words for the model about the place ("back door of a bakery; deliveries 06:00–07:00"). */
    context: z.string().max(1000).nullable(),
    timezone,
    /** When the site is closed: a person then is an alert by itself. */
    closedHours: hours,
    /** Events at or above this level raise an alert. */
    minLevel: z.enum(RISK_LEVELS),
    /** Alerts below critical are raised but not sent during these hours. */
    quietHours: hours,
    /** A scene alert closes after this long without a qualifying event (critical: once acknowledged too). */
    cooldownS: z.number().int().min(0).max(86_400),
    /** An unacknowledged critical alert is sent again this often. */
    renotifyS: z.number().int().min(60).max(86_400),
  })
  .strict();

export type AnalysisSettings = z.infer<typeof AnalysisSettingsSchema>;

/** Overrides: any subset of the settings. */
export const SettingsPatchSchema = AnalysisSettingsSchema.partial();
export type SettingsPatch = z.infer<typeof SettingsPatchSchema>;

export const DEFAULT_ANALYSIS_SETTINGS: AnalysisSettings = {
  // Noise flips up to 4 bits in good light, up to 7 in half the light; a person a third of
  // the frame high, 11–27 (frame-intake.ts).
  dedupeThreshold: 8,
  reanalyseAfterS: 600,
  batchWindowS: 90,
  batchIdleS: 30,
  batchMaxFrames: 6,
  // A person close to the camera flips 26–38 bits, half the light 9, infrared 16.
  largeChangeDistance: 40,
  context: null,
  timezone: 'UTC',
  closedHours: null,
  minLevel: 'high',
  quietHours: null,
  cooldownS: 600,
  renotifyS: 300,
};

/** The settings in force: defaults, then the site's overrides, then the camera's. */
export function effectiveSettings(defaults: AnalysisSettings, site: Record<string, unknown>, camera: Record<string, unknown>): AnalysisSettings {
  // Stored overrides were checked when written; one that no longer parses (a field removed in
  // a later version) is ignored field by field rather than breaking the camera's analysis.
  const merged: Record<string, unknown> = { ...defaults };
  for (const o of [site, camera]) {
    for (const [k, v] of Object.entries(o)) {
      const field = (AnalysisSettingsSchema.shape as Record<string, z.ZodType>)[k];
      if (field && field.safeParse(v).success) merged[k] = v;
    }
  }
  return merged as AnalysisSettings;
}

/**
 * Checks a site's or camera's overrides as a whole (PUT semantics: a key left out inherits the
 * wider scope's value; null, where allowed, means "none" and overrides too). Throws a readable
 * message (field: problem; ...) when they are not valid.
 */
export function parseOverrides(body: unknown): SettingsPatch {
  const r = SettingsPatchSchema.safeParse(body);
  if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join('.') || 'settings'}: ${i.message}`).join('; '));
  return r.data;
}
