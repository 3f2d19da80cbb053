import rateLimit from '@fastify/rate-limit';
import type { DeviceInfo } from '@vigil/protocol';
import type { FastifyPluginAsync } from 'fastify';
import { deviceAuth, requireDevice } from '../auth.js';
import type { AppContext } from '../context.js';
import { CloudError } from '../errors.js';
import { claimRoutes } from './claim.js';
import { firmwareDeviceRoutes } from './firmware-device.js';
import { frameReadRoutes } from './frames.js';
import { heartbeatRoutes } from './heartbeat.js';
import { inventoryRoutes } from './inventory.js';
import { uploadRoutes } from './uploads.js';

/**
 * The device-facing API under /v1. Claim needs no token; everything else sits in a scope
 * whose onRequest hooks check the token first and then count the request against that
 * device's rate limit (route-level hooks run after the scope's own).
 */
export const deviceApi: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  await app.register(claimRoutes, { ctx });

  await app.register(async (authed) => {
    authed.addHook('onRequest', deviceAuth(ctx.store, ctx.now));
    await authed.register(rateLimit, {
      hook: 'onRequest',
      max: ctx.config.deviceRateLimit,
      timeWindow: ctx.config.rateLimitWindowMs,
      keyGenerator: (req) => requireDevice(req).id,
      errorResponseBuilder: (_req, c) => new CloudError('RATE_LIMITED', `rate limit of ${c.max} requests exceeded; retry in ${c.after}`),
    });

    authed.get('/device', async (req): Promise<DeviceInfo> => {
      const d = requireDevice(req);
      return { deviceId: d.id, siteId: d.siteId, site: d.site, name: d.name };
    });
    await authed.register(uploadRoutes, { ctx });
    await authed.register(heartbeatRoutes, { ctx });
    await authed.register(inventoryRoutes, { ctx });
    await authed.register(firmwareDeviceRoutes, { ctx });
    await authed.register(frameReadRoutes, {
      ctx,
      scope: (req) => requireDevice(req).id,
      imagePath: (frameId) => `/v1/frames/${frameId}/image`,
    });
  });
};
