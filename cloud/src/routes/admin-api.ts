import type { FastifyPluginAsync } from 'fastify';
import { adminAuth } from '../auth.js';
import { issueClaimCode, MAX_CLAIM_CODE_TTL_S, MAX_SITE_NAME, type IssuedClaimCode } from '../claim-codes.js';
import type { AppContext } from '../context.js';
import { CloudError } from '../errors.js';
import type { SiteRecord } from '../store/types.js';
import { firmwareAdminRoutes } from './firmware-admin.js';
import { eventRoutes } from './events.js';
import { fleetAdminRoutes } from './fleet-admin.js';
import { adminFrameImagePath, frameReadRoutes } from './frames.js';

const claimCodeSchema = {
  body: {
    type: 'object',
    required: ['site'],
    properties: {
      site: { type: 'string', minLength: 1, maxLength: MAX_SITE_NAME },
      ttlSeconds: { type: 'integer', minimum: 1, maximum: MAX_CLAIM_CODE_TTL_S },
    },
  },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;

/** The people-facing API under /admin/v1, behind the admin token. */
export const adminApi: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.addHook('onRequest', adminAuth(ctx));

  app.post<{ Body: { site: string; ttlSeconds?: number } }>('/claim-codes', { schema: claimCodeSchema }, async (req, reply): Promise<IssuedClaimCode> => {
    const issued = await issueClaimCode(ctx.store, { site: req.body.site, ttlSeconds: req.body.ttlSeconds ?? ctx.config.claimCodeTtlS, now: ctx.now() });
    req.log.info({ site: issued.site, expiresAt: issued.expiresAt }, 'claim code issued');
    void reply.status(201);
    return issued;
  });

  app.get('/sites', async (): Promise<SiteRecord[]> => ctx.store.listSites());

  app.post<{ Params: { id: string } }>('/devices/:id/revoke', { schema: { params: idParams } }, async (req) => {
    if (!(await ctx.store.revokeDevice(req.params.id, ctx.now()))) throw new CloudError('DEVICE_NOT_FOUND', 'no such device');
    req.log.warn({ deviceId: req.params.id }, 'device tokens revoked');
    await ctx.fleet.onRevoked(req.params.id);
    return { deviceId: req.params.id, revoked: true };
  });

  await app.register(fleetAdminRoutes, { ctx });
  await app.register(firmwareAdminRoutes, { ctx });
  await app.register(eventRoutes, { ctx });
  await app.register(frameReadRoutes, { ctx, scope: () => undefined, imagePath: adminFrameImagePath });
};
