import type { RiskLevel } from '../analysis/analyser.js';
import type { NewEvent } from './analysis-types.js';
import type { EventRecord } from './event-types.js';
import type { Row } from './sqlite-rows.js';

// Event rows → records, and the event query, shared by the SQLite and the PostgreSQL stores.

export const EVENT_SELECT = `SELECT e.*, c.key AS camera_key, coalesce(c.name, w.reported_name) AS camera_name, d.name AS device_name, s.name AS site
  FROM events e JOIN cameras c ON c.id = e.camera_id JOIN devices d ON d.id = e.device_id JOIN sites s ON s.id = d.site_id
  LEFT JOIN camera_watch w ON w.camera_id = e.camera_id`;

export function toEvent(r: Row): Omit<EventRecord, 'frames'> {
  return {
    id: r.id as string,
    batchId: r.batch_id as string,
    cameraId: r.camera_id as string,
    cameraKey: r.camera_key as string,
    cameraName: (r.camera_name as string | null) ?? null,
    deviceId: r.device_id as string,
    deviceName: r.device_name as string,
    site: r.site as string,
    startedAt: r.started_at as number,
    endedAt: r.ended_at as number,
    riskScore: r.risk_score as number,
    level: r.level as RiskLevel,
    summary: r.summary as string,
    reasoning: r.reasoning as string,
    observations: JSON.parse(r.observations as string) as string[],
    detections: JSON.parse(r.detections as string) as NewEvent['detections'],
    source: r.source as NewEvent['source'],
    model: (r.model as string | null) ?? null,
    offSpec: r.off_spec === null ? null : (JSON.parse(r.off_spec as string) as NewEvent['offSpec']),
    analysisError: (r.analysis_error as string | null) ?? null,
    alertId: (r.alert_id as string | null) ?? null,
    createdAt: r.created_at as number,
  };
}

export function toBatchFrameRef(r: Row): { id: string; capturedAt: number } {
  return { id: r.frame_id as string, capturedAt: r.captured_at as number };
}
