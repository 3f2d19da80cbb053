import type { HeartbeatRequest } from '@vigil/protocol';
import type { FastifyPluginAsync } from 'fastify';
import type { AppContext } from '../context.js';
import { CloudError } from '../errors.js';
import type { AlertRecord, NotificationRecord } from '../store/alert-types.js';
import type { CameraWatch, DeviceHealth, FleetDevice } from '../store/fleet-types.js';
import type { DeviceRecord } from '../store/types.js';

export const DEFAULT_ALERT_PAGE = 100;
export const MAX_ALERT_PAGE = 1000;

/** GET /admin/v1/devices: each device with the summary of its latest heartbeat. */
export interface DeviceStatusView extends DeviceRecord {
  /** null until the first heartbeat. */
  status: DeviceHealth | null;
  openAlerts: number;
}

/** GET /admin/v1/devices/:id: the latest report in full, cameras as watched, open alerts. */
export interface DeviceDetailView extends DeviceStatusView {
  report: HeartbeatRequest | null;
  cameras: CameraWatch[];
  alerts: AlertRecord[];
}

/** A notification as people see it: the target only by origin (webhook paths often hold a secret). */
export type NotificationView = Omit<NotificationRecord, 'payload' | 'target'> & { target: string };

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;
const alertsQuery = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: ['open', 'closed', 'all'], default: 'all' },
    device: { type: 'string', minLength: 1, maxLength: 100 },
    kind: { type: 'string', minLength: 1, maxLength: 100 },
    limit: { type: 'integer', minimum: 1, default: DEFAULT_ALERT_PAGE },
  },
} as const;

/** Device status and alerts under /admin/v1 (behind the admin token of the enclosing scope). */
export const fleetAdminRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { store } = ctx;

  app.get('/devices', async (): Promise<DeviceStatusView[]> => {
    const [devices, open] = await Promise.all([store.fleet.fleetDevices(), store.alerts.openAlerts()]);
    return devices.map((fd) => statusView(fd, open.filter((a) => a.deviceId === fd.device.id).length));
  });

  app.get<{ Params: { id: string } }>('/devices/:id', { schema: { params: idParams } }, async (req): Promise<DeviceDetailView> => {
    const fd = (await store.fleet.fleetDevices(req.params.id))[0];
    if (!fd) throw new CloudError('DEVICE_NOT_FOUND', 'no such device');
    const [latest, cameras, alerts] = await Promise.all([
      store.fleet.latestReport(fd.device.id),
      store.fleet.cameraWatch(fd.device.id),
      store.alerts.openAlerts(fd.device.id),
    ]);
    return { ...statusView(fd, alerts.length), report: latest?.report ?? null, cameras, alerts };
  });

  app.get<{ Querystring: { state: 'open' | 'closed' | 'all'; device?: string; kind?: string; limit: number } }>(
    '/alerts',
    { schema: { querystring: alertsQuery } },
    async (req): Promise<AlertRecord[]> => {
      const q = req.query;
      return store.alerts.listAlerts({
        state: q.state === 'all' ? undefined : q.state,
        deviceId: q.device,
        kind: q.kind,
        limit: Math.min(q.limit, MAX_ALERT_PAGE),
      });
    },
  );

  app.get<{ Params: { id: string } }>('/alerts/:id', { schema: { params: idParams } }, async (req) => {
    const alert = await store.alerts.getAlert(req.params.id);
    if (!alert) throw new CloudError('ALERT_NOT_FOUND', 'no such alert');
    const notifications = (await store.alerts.notificationsFor(alert.id)).map(notificationView);
    return { ...alert, notifications };
  });

  // For an alert the watch can no longer decide, e.g. a camera taken off the site that the
  // device stopped listing. If the condition still holds, the watch opens a new alert.
  app.post<{ Params: { id: string } }>('/alerts/:id/close', { schema: { params: idParams } }, async (req): Promise<AlertRecord> => {
    const closed = await ctx.alerts.close(req.params.id, 'closed by an admin');
    if (closed) return closed;
    const alert = await store.alerts.getAlert(req.params.id);
    if (!alert) throw new CloudError('ALERT_NOT_FOUND', 'no such alert');
    return alert;
  });
};

function statusView(fd: FleetDevice, openAlerts: number): DeviceStatusView {
  return { ...fd.device, status: fd.health, openAlerts };
}

function notificationView(n: NotificationRecord): NotificationView {
  const { payload: _payload, target, ...rest } = n;
  return { ...rest, target: URL.canParse(target) ? new URL(target).origin : 'invalid URL' };
}
