import type { FastifyPluginAsync } from 'fastify';
import { RISK_LEVELS, type RiskLevel } from '../analysis/analyser.js';
import { effectiveSettings, parseOverrides, type AnalysisSettings } from '../analysis/settings.js';
import { analysisDefaults } from '../config.js';
import type { AppContext } from '../context.js';
import { CloudError } from '../errors.js';
import type { AlertRecord } from '../store/alert-types.js';
import type { AnalysisCounters } from '../store/analysis-types.js';
import type { EventRecord } from '../store/event-types.js';
import { adminFrameImagePath } from './frames.js';

export const DEFAULT_EVENT_PAGE = 50;
export const MAX_EVENT_PAGE = 500;

/** An event as the API, the live stream and the dashboard show it: its frames with their image URLs. */
export interface EventView extends Omit<EventRecord, 'frames'> {
  frames: { id: string; capturedAt: number; imageUrl: string }[];
}

export function eventView(e: EventRecord): EventView {
  return { ...e, frames: e.frames.map((f) => ({ ...f, imageUrl: adminFrameImagePath(f.id) })) };
}

/** GET /admin/v1/analysis: what the pipeline is doing. */
export interface AnalysisStatusView {
  counters: AnalysisCounters;
  /** Skipped as duplicates / frames seen, 0..1. */
  skipRate: number | null;
  pipeline: ReturnType<AppContext['analysis']['status']>;
  analyser: (ReturnType<NonNullable<AppContext['analyser']>['status']> & { name: string }) | null;
  detector: AppContext['config']['detector'];
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;
const eventsQuery = {
  type: 'object',
  properties: {
    camera: { type: 'string', maxLength: 100 },
    device: { type: 'string', maxLength: 100 },
    minLevel: { type: 'string', enum: [...RISK_LEVELS] },
    before: { type: 'integer', minimum: 0 },
    limit: { type: 'integer', minimum: 1, default: DEFAULT_EVENT_PAGE },
  },
} as const;

/**
 * Scene events, acknowledging alerts, and the analysis settings of sites and cameras, under
 * /admin/v1 (behind the enclosing scope's admin auth).
 */
export const eventRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { store } = ctx;

  app.get<{ Querystring: { camera?: string; device?: string; minLevel?: RiskLevel; before?: number; limit: number } }>(
    '/events',
    { schema: { querystring: eventsQuery } },
    async (req): Promise<EventView[]> => {
      const q = req.query;
      const events = await store.events.listEvents({ cameraId: q.camera, deviceId: q.device, minLevel: q.minLevel, before: q.before, limit: Math.min(q.limit, MAX_EVENT_PAGE) });
      return events.map(eventView);
    },
  );

  app.get<{ Params: { id: string } }>('/events/:id', { schema: { params: idParams } }, async (req): Promise<EventView> => {
    const e = await store.events.getEvent(req.params.id);
    if (!e) throw new CloudError('EVENT_NOT_FOUND', 'no such event');
    return eventView(e);
  });

  app.post<{ Params: { id: string } }>('/alerts/:id/ack', { schema: { params: idParams } }, async (req): Promise<AlertRecord> => {
    return acknowledgeAlert(ctx, req.params.id, req.user?.name ?? 'admin-token');
  });

  app.get('/analysis', async (): Promise<AnalysisStatusView> => {
    const counters = await store.analysis.counters();
    const analyser = ctx.analyser ? { ...ctx.analyser.status(), name: ctx.analyser.name } : null;
    return {
      counters,
      skipRate: counters.frames.seen === 0 ? null : counters.frames.skipped / counters.frames.seen,
      pipeline: ctx.analysis.status(),
      analyser,
      detector: ctx.config.detector,
    };
  });

  for (const scope of ['site', 'camera'] as const) {
    const exists = async (id: string) => (scope === 'site' ? (await store.listSites()).some((s) => s.id === id) : (await store.getCamera(id)) !== null);
    app.get<{ Params: { id: string } }>(`/${scope}s/:id/analysis`, { schema: { params: idParams } }, async (req) => {
      if (!(await exists(req.params.id))) throw new CloudError(scope === 'site' ? 'SITE_NOT_FOUND' : 'CAMERA_NOT_FOUND', `no such ${scope}`);
      return settingsView(ctx, scope, req.params.id);
    });
    app.put<{ Params: { id: string }; Body: unknown }>(`/${scope}s/:id/analysis`, { schema: { params: idParams } }, async (req) => {
      if (!(await exists(req.params.id))) throw new CloudError(scope === 'site' ? 'SITE_NOT_FOUND' : 'CAMERA_NOT_FOUND', `no such ${scope}`);
      let overrides: Record<string, unknown>;
      try {
        overrides = parseOverrides(req.body ?? {});
      } catch (err) {
        throw new CloudError('BAD_REQUEST', `invalid analysis settings: ${(err as Error).message}`);
      }
      await store.analysis.setSettings(scope, req.params.id, overrides, ctx.now());
      req.log.info({ scope, id: req.params.id, overrides, by: req.user?.name }, 'analysis settings changed');
      return settingsView(ctx, scope, req.params.id);
    });
  }
};

/** Acknowledges an alert for `by`; an alert already acknowledged (or closed) is answered as it is. */
export async function acknowledgeAlert(ctx: AppContext, id: string, by: string): Promise<AlertRecord> {
  const acked = await ctx.alerts.acknowledge(id, by);
  if (acked) return acked;
  const alert = await ctx.store.alerts.getAlert(id);
  if (!alert) throw new CloudError('ALERT_NOT_FOUND', 'no such alert');
  return alert;
}

/** A scope's own overrides and the settings in force there. */
async function settingsView(ctx: AppContext, scope: 'site' | 'camera', id: string): Promise<{ overrides: Record<string, unknown>; effective: AnalysisSettings }> {
  const { analysis } = ctx.store;
  const overrides = await analysis.getSettings(scope, id);
  if (scope === 'site') return { overrides, effective: effectiveSettings(analysisDefaults(ctx.config), overrides, {}) };
  const cam = await analysis.cameraContext(id);
  const site = cam ? await analysis.getSettings('site', cam.siteId) : {};
  return { overrides, effective: effectiveSettings(analysisDefaults(ctx.config), site, overrides) };
}
