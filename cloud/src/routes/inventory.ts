import { CAPTURE_PATHS, type CameraInventoryRequest, type CameraInventoryResponse } from '@vigil/protocol';
import type { FastifyPluginAsync } from 'fastify';
import { requireDevice } from '../auth.js';
import type { AppContext } from '../context.js';
import { CloudError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { MAX_CAMERA_KEY } from './uploads.js';

// PUT /v1/cameras/inventory (protocol/src/api.ts: CameraInventoryRequest). Every field is
// required (null where the type allows it); unknown fields are dropped (removeAdditional), so a
// newer agent still gets through. Strings are bounded so a stored inventory stays small.

/** Cameras one device may list. A site has a handful; this leaves room for a large one. */
export const MAX_INVENTORY_CAMERAS = 256;
/** Names and ONVIF strings (manufacturer, model, firmware, serial). */
export const MAX_INVENTORY_TEXT = 200;
/** host or host:port (a DNS name is at most 253 characters). */
export const MAX_ADDRESS = 300;
export const MAX_MAC = 64;
export const MAX_INVENTORY_ERROR = 1_000;
/** 256 cameras with every string at its limit fit within this; beyond it → 413 BODY_TOO_LARGE. */
export const INVENTORY_BODY_LIMIT = 1024 * 1024;

const nullableText = (maxLength: number) => ({ type: ['string', 'null'], maxLength }) as const;
const obj = (properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, required: Object.keys(properties), properties }) as const;

export const inventoryBodySchema = obj({
  cameras: {
    type: 'array',
    maxItems: MAX_INVENTORY_CAMERAS,
    items: obj({
      camera: { type: 'string', minLength: 1, maxLength: MAX_CAMERA_KEY },
      name: { type: 'string', maxLength: MAX_INVENTORY_TEXT },
      source: { type: 'string', enum: ['onvif', 'config'] },
      manufacturer: nullableText(MAX_INVENTORY_TEXT),
      model: nullableText(MAX_INVENTORY_TEXT),
      firmware: nullableText(MAX_INVENTORY_TEXT),
      serial: nullableText(MAX_INVENTORY_TEXT),
      mac: nullableText(MAX_MAC),
      address: nullableText(MAX_ADDRESS),
      capturePath: { type: 'string', enum: [...CAPTURE_PATHS] },
      present: { type: 'boolean' },
      lastError: nullableText(MAX_INVENTORY_ERROR),
      lastSeenAt: { type: ['integer', 'null'], minimum: 0 },
    }),
  },
});

/**
 * PUT /v1/cameras/inventory — the device's whole camera list, sent when it changes. A PUT: the
 * list replaces the previous one, so sending it again changes nothing. Cameras are matched by
 * key, the key uploads use, so a camera's frames and its inventory are one record.
 */
export const inventoryRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.put<{ Body: CameraInventoryRequest }>(
    '/cameras/inventory',
    { schema: { body: inventoryBodySchema }, bodyLimit: INVENTORY_BODY_LIMIT },
    async (req): Promise<CameraInventoryResponse> => {
      const device = requireDevice(req);
      const { cameras } = req.body;
      // Two entries for one key cannot both be right: refuse rather than pick one.
      const seen = new Set<string>();
      cameras.forEach((c, i) => {
        if (seen.has(c.camera)) throw new CloudError('BAD_REQUEST', `body/cameras/${i}/camera ${JSON.stringify(c.camera)} is listed twice`);
        seen.add(c.camera);
      });
      const receivedAt = ctx.now();
      const change = await ctx.store.inventory.recordInventory({ deviceId: device.id, receivedAt, cameras, newCameraId: () => newId('cam') });
      req.log.info({ deviceId: device.id, ...change }, 'camera inventory received');
      try {
        await ctx.fleet.onInventory(device.id);
      } catch (err) {
        // The inventory is stored; the next heartbeat (or the sweep) evaluates again.
        req.log.error({ err, deviceId: device.id }, 'fleet watch failed on an inventory');
      }
      return { receivedAt };
    },
  );
};
