import type { HeartbeatRequest, HeartbeatResponse } from '@vigil/protocol';
import type { FastifyPluginAsync } from 'fastify';
import { requireDevice } from '../auth.js';
import { HEARTBEAT_HISTORY } from '../config.js';
import type { AppContext } from '../context.js';
import { newId } from '../lib/ids.js';
import { HEARTBEAT_BODY_LIMIT, heartbeatBodySchema, normalizeHeartbeat } from './heartbeat-schema.js';

/**
 * POST /v1/heartbeat — the device's health report, about once a minute. Stored (the latest in
 * full, a short history of queue depths), then the device's alerts are brought up to date.
 */
export const heartbeatRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.post<{ Body: HeartbeatRequest }>(
    '/heartbeat',
    { schema: { body: heartbeatBodySchema }, bodyLimit: HEARTBEAT_BODY_LIMIT },
    async (req): Promise<HeartbeatResponse> => {
      const device = requireDevice(req);
      const report = normalizeHeartbeat(req.body);
      const receivedAt = ctx.now();
      await ctx.store.fleet.recordHeartbeat({ deviceId: device.id, receivedAt, report, keepHistory: HEARTBEAT_HISTORY, newCameraId: () => newId('cam') });
      try {
        await ctx.fleet.onHeartbeat(device.id, report);
      } catch (err) {
        // The heartbeat is stored; the next one (or the sweep) evaluates again.
        req.log.error({ err, deviceId: device.id }, 'fleet watch failed on a heartbeat');
      }
      return { receivedAt };
    },
  );
};
