import type { ClaimRequest, ClaimResponse } from '@vigil/protocol';
import type { FastifyPluginAsync } from 'fastify';
import { claimCodeHash } from '../claim-codes.js';
import type { AppContext } from '../context.js';
import { CloudError, type ErrorCode } from '../errors.js';
import { newDeviceToken, newId, sha256Hex } from '../lib/ids.js';

const claimSchema = {
  body: {
    type: 'object',
    required: ['code', 'hardwareId'],
    properties: {
      code: { type: 'string', minLength: 1, maxLength: 64 },
      hardwareId: { type: 'string', minLength: 1, maxLength: 200 },
      name: { type: 'string', minLength: 1, maxLength: 200 },
    },
  },
} as const;

const REFUSALS: Record<'unknown' | 'used' | 'expired', { code: ErrorCode; message: string }> = {
  unknown: { code: 'CLAIM_CODE_UNKNOWN', message: 'no such claim code' },
  used: { code: 'CLAIM_CODE_USED', message: 'this claim code has already been used; ask for a new one' },
  expired: { code: 'CLAIM_CODE_EXPIRED', message: 'this claim code has expired; ask for a new one' },
};

/** POST /v1/claim — a one-time claim code in, a long-lived device token out. */
export const claimRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.post<{ Body: ClaimRequest }>('/claim', { schema: claimSchema }, async (req): Promise<ClaimResponse> => {
    const token = newDeviceToken();
    const r = await ctx.store.claim({
      codeHash: claimCodeHash(req.body.code),
      hardwareId: req.body.hardwareId,
      name: req.body.name,
      tokenHash: sha256Hex(token),
      newDeviceId: newId('dev'),
      now: ctx.now(),
    });
    if (!r.ok) {
      if (r.reason === 'other_site') {
        req.log.warn({ deviceId: r.deviceId, site: r.site }, 'claim refused: the device belongs to another site');
        throw new CloudError(
          'CLAIM_DEVICE_OTHER_SITE',
          `this device is registered at site "${r.site}"; remove it there first (vigil-cloud revoke --device ${r.deviceId}), then claim it again`,
        );
      }
      const refusal = REFUSALS[r.reason];
      throw new CloudError(refusal.code, refusal.message);
    }
    req.log.info({ deviceId: r.device.id, site: r.device.site, reclaimed: r.reclaimed }, 'device claimed');
    return { deviceId: r.device.id, siteId: r.device.siteId, site: r.device.site, token };
  });
};
