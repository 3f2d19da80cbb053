import { RISK_LEVELS, type RiskLevel } from '../analysis/analyser.js';
import type { AppContext } from '../context.js';
import { eventView, type EventView } from '../routes/events.js';
import type { AlertRecord } from '../store/alert-types.js';
import { ackCell, alertState, alertTable, levelBadge } from './alerts-page.js';
import { ago, esc, page, time } from './layout.js';
import { LIVE_INDICATOR, LIVE_SCRIPT_TAG, LIVE_STYLE } from './live-script.js';

// /events — what the cameras saw, as people read it: the scene events newest first (level,
// risk, the model's summary and reasoning, what the detector found, the frames, the alert the
// event joined), under the alerts still open, which can be acknowledged here. ?level= shows
// events at or above a level, ?camera= one camera. The live script adds new events at the top
// and keeps the alerts current.

export const EVENTS_SHOWN = 50;

export interface EventsFilter {
  /** Events at or above this level. */
  level?: RiskLevel | undefined;
  cameraId?: string | undefined;
}

/** The filter from the query string; anything else (an unknown level, an empty value) means "all". */
export function eventsFilter(q: { level?: unknown; camera?: unknown }): EventsFilter {
  const level = RISK_LEVELS.find((l) => l === q.level);
  const cameraId = typeof q.camera === 'string' && q.camera !== '' ? q.camera : undefined;
  return { level, cameraId };
}

export async function renderEvents(ctx: AppContext, filter: EventsFilter): Promise<string> {
  const now = ctx.now();
  const { store } = ctx;
  const [records, cameras, open] = await Promise.all([
    store.events.listEvents({ cameraId: filter.cameraId, minLevel: filter.level, limit: EVENTS_SHOWN }),
    store.listCameras(),
    store.alerts.openAlerts(),
  ]);
  const events = records.map(eventView);
  const alerts = new Map<string, AlertRecord>(open.map((a) => [a.id, a]));
  for (const id of new Set(events.map((e) => e.alertId).filter((id): id is string => id !== null && !alerts.has(id)))) {
    const a = await store.alerts.getAlert(id);
    if (a) alerts.set(id, a);
  }
  const back = `/events${query(filter)}`;
  const cameraOptions = cameras
    .map((c) => `<option value="${esc(c.id)}"${c.id === filter.cameraId ? ' selected' : ''}>${esc(c.name || c.key)}</option>`)
    .join('');
  const levelOptions = RISK_LEVELS.map((l) => `<option value="${l}"${l === filter.level ? ' selected' : ''}>${l} and above</option>`).join('');
  const form = `<form method="get" action="/events" class="filter">
    <label>Level <select name="level"><option value="">all</option>${levelOptions}</select></label>
    <label>Camera <select name="camera"><option value="">all</option>${cameraOptions}</select></label>
    <button type="submit">Show</button>${filter.level || filter.cameraId ? ' <a href="/events">all events</a>' : ''}</form>`;
  const timeline = events.map((e) => eventArticle(e, e.alertId ? (alerts.get(e.alertId) ?? null) : null, now, back)).join('');
  const attrs = `${filter.level ? ` data-min-level="${filter.level}"` : ''}${filter.cameraId ? ` data-camera="${esc(filter.cameraId)}"` : ''}`;
  return page(
    'Vigil — events',
    `${LIVE_STYLE}<h2>Open alerts <small>${open.length}</small> ${LIVE_INDICATOR}</h2>
     ${alertTable(open, now, back, 'No open alerts.')}
     <h2>Events</h2>${form}
     <div id="timeline"${attrs}>${timeline || '<p class="none">No events yet.</p>'}</div>${LIVE_SCRIPT_TAG}`,
  );
}

function eventArticle(e: EventView, alert: AlertRecord | null, now: number, back: string): string {
  const camera = esc(e.cameraName || e.cameraKey);
  const observations = e.observations.length ? `<ul>${e.observations.map((o) => `<li>${esc(o)}</li>`).join('')}</ul>` : '';
  const detections = e.detections.map((d) => `${esc(d.label)} ×${d.frames} (${d.maxScore.toFixed(2)})`).join(', ');
  const problems = e.analysisError ? `<p class="warn"><small>No model answer: ${esc(e.analysisError)}</small></p>` : '';
  const thumbs = e.frames
    .map((f) => `<a href="${esc(f.imageUrl)}"><img src="${esc(f.imageUrl)}" alt="frame ${time(f.capturedAt)}" loading="lazy"></a>`)
    .join('');
  return `<article class="event lvl-${e.level}" id="event-${esc(e.id)}" data-event-id="${esc(e.id)}">
    <header>${levelBadge(e.level)} <span class="risk">risk ${e.riskScore}</span> <b class="camera">${camera}</b> <small>${esc(e.site)} / ${esc(e.deviceName)}</small>
    <time datetime="${new Date(e.startedAt).toISOString()}">${ago(e.startedAt, now)}</time> <small>${e.source === 'vision' ? esc(e.model ?? 'vision model') : 'object detector'}</small></header>
    <p class="summary">${esc(e.summary)}</p>
    <details><summary>Reasoning</summary><p>${esc(e.reasoning)}</p>${observations}</details>${problems}
    <p class="detections">${detections ? `Detections: ${detections}` : 'No detections'}</p>
    <div class="thumbs">${thumbs}</div>${e.alertId ? eventAlert(e.alertId, alert, now, back) : ''}</article>`;
}

/** The alert an event joined: its title, level, state and acknowledgement (the live script updates them). */
function eventAlert(alertId: string, a: AlertRecord | null, now: number, back: string): string {
  const href = `/alerts#alert-${encodeURIComponent(alertId)}`;
  if (!a) return `<div class="event-alert">Alert: <a href="${href}">${esc(alertId)}</a> (no longer kept)</div>`;
  return `<div class="event-alert" data-alert-id="${esc(a.id)}" data-alert-state="${a.state}">Alert: <a href="${href}" class="alert-title">${esc(a.title)}</a>
    <span class="alert-level">${levelBadge(a.level)}</span> <span class="alert-state">${alertState(a, now)}</span> · <span class="alert-ack">${ackCell(a, back)}</span></div>`;
}

function query(f: EventsFilter): string {
  const q = new URLSearchParams();
  if (f.level) q.set('level', f.level);
  if (f.cameraId) q.set('camera', f.cameraId);
  const s = q.toString();
  return s ? `?${s}` : '';
}
