import type { Logger } from 'pino';
import type { AlertService } from '../alerts/alert-service.js';
import type { AlertRecord } from '../store/alert-types.js';
import type { AlertPlan, NewEvent } from '../store/analysis-types.js';
import { RISK_LEVELS, type RiskLevel } from './analyser.js';
import { inHours } from './hours.js';
import type { AnalysisSettings } from './settings.js';

// From scene events to alerts a person acts on. One incident is one alert: while a camera has
// an open scene alert, every qualifying event joins it (raising its level when worse) instead
// of opening another. The alert closes once no qualifying event came for `cooldownS`; a
// critical one also needs a person to acknowledge it, and until then it is sent again every
// `renotifyS`. Quiet hours mute the sending of alerts below critical (they are still raised
// and shown); a critical alert is always sent.

export function rank(level: RiskLevel): number {
  return RISK_LEVELS.indexOf(level);
}

const LEVEL_WORD: Record<RiskLevel, string> = { low: 'Low', medium: 'Medium', high: 'High', critical: 'Critical' };

/** What an event does to its camera's scene alert. Pure: called inside the store's transaction. */
export function planSceneAlert(event: NewEvent, s: AnalysisSettings, open: AlertRecord | null, now: number, newAlertId: string): AlertPlan {
  if (rank(event.level) < rank(s.minLevel)) return { action: 'none' };
  const muted = event.level !== 'critical' && inHours(s.quietHours, now, s.timezone);
  if (open) {
    const escalateTo = rank(event.level) > rank(open.level) ? event.level : null;
    return { action: 'attach', alertId: open.id, escalateTo, notify: escalateTo !== null && !muted };
  }
  return {
    action: 'open',
    alertId: newAlertId,
    level: event.level,
    title: `${LEVEL_WORD[event.level]}: ${event.summary}`,
    detail: {
      riskScore: event.riskScore,
      summary: event.summary,
      source: event.source,
      cooldownS: s.cooldownS,
      renotifyS: s.renotifyS,
      ...(muted ? { muted: `quiet hours ${s.quietHours} (${s.timezone})` } : {}),
    },
    notify: !muted,
  };
}

/** Settings of a camera, for alerts made under settings that may have changed since. */
export type SettingsOf = (alert: AlertRecord) => Promise<AnalysisSettings>;

/**
 * One pass over open scene alerts: close the ones quiet for their cooldown (critical ones only
 * once acknowledged), send unacknowledged critical ones again when due. Returns what it did.
 */
export async function sweepSceneAlerts(
  o: { alerts: AlertService; open: AlertRecord[]; settingsOf: SettingsOf; now: number; logger: Logger },
): Promise<{ closed: number; renotified: number }> {
  let closed = 0;
  let renotified = 0;
  for (const a of o.open) {
    const s = await o.settingsOf(a);
    const last = a.lastEventAt ?? a.openedAt;
    const quietFor = o.now - last;
    const needsAck = a.level === 'critical' && a.acknowledgedAt === null;
    if (quietFor >= s.cooldownS * 1000 && !needsAck) {
      const why = a.acknowledgedBy ? `acknowledged by ${a.acknowledgedBy}; quiet for ${Math.round(s.cooldownS / 60)} min` : `quiet for ${Math.round(s.cooldownS / 60)} min`;
      if (await o.alerts.close(a.id, why)) closed++;
    } else if (needsAck && o.now - (a.lastNotifiedAt ?? a.openedAt) >= s.renotifyS * 1000) {
      if (await o.alerts.renotify(a)) renotified++;
    }
  }
  return { closed, renotified };
}
