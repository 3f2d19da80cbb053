import { VARIANTS, type CameraSummary, type FrameSummary, type Variant } from '@vigil/protocol';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { CloudError } from '../errors.js';
import type { CameraInventory } from '../store/inventory-types.js';
import type { CameraWithStats, FrameRecord } from '../store/types.js';

export const DEFAULT_FRAME_PAGE = 50;

/** Where people (the admin API, a dashboard session) get a frame's JPEG. */
export function adminFrameImagePath(frameId: string): string {
  return `/admin/v1/frames/${encodeURIComponent(frameId)}/image`;
}
/** Larger limits are clamped to this (page on with `before`). */
export const MAX_FRAME_PAGE = 1000;

export interface FrameReadOptions {
  ctx: AppContext;
  /** The device whose records are visible, or undefined for all (admin). */
  scope: (req: FastifyRequest) => string | undefined;
  /** Where this API serves a frame's image. */
  imagePath: (frameId: string) => string;
}

/** GET /admin/v1/cameras: a camera of any device, with its inventory (null if none ever listed it). */
export interface AdminCameraView extends CameraSummary {
  deviceId: string;
  inventory: CameraInventory | null;
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;
const framesQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, default: DEFAULT_FRAME_PAGE },
    before: { type: 'integer', minimum: 0 },
    variant: { type: 'string', enum: [...VARIANTS] },
  },
} as const;

/**
 * Cameras, frames and images, for one device (the device API) or all (the admin API). A record
 * outside the scope answers 404, exactly like one that does not exist: its existence is not
 * revealed.
 */
export const frameReadRoutes: FastifyPluginAsync<FrameReadOptions> = async (app, { ctx, scope, imagePath }) => {
  const { store, objects } = ctx;

  app.get('/cameras', async (req): Promise<CameraSummary[] | AdminCameraView[]> => {
    const deviceId = scope(req);
    const cameras = await store.listCameras(deviceId);
    // The admin view spans devices, so it says whose camera each one is, and what the device's
    // inventory says about it. The device knows its own inventory: its view stays the summary.
    if (deviceId === undefined) return cameras.map((c) => ({ ...toCameraSummary(c), deviceId: c.deviceId, inventory: c.inventory }));
    return cameras.map(toCameraSummary);
  });

  app.get<{ Params: { id: string }; Querystring: { limit: number; before?: number; variant?: Variant } }>(
    '/cameras/:id/frames',
    { schema: { params: idParams, querystring: framesQuery } },
    async (req): Promise<FrameSummary[]> => {
      const camera = await store.getCamera(req.params.id, scope(req));
      if (!camera) throw new CloudError('CAMERA_NOT_FOUND', 'no such camera');
      const limit = Math.min(req.query.limit, MAX_FRAME_PAGE);
      const frames = await store.listFrames(camera.id, { limit, before: req.query.before, variant: req.query.variant });
      return frames.map((f) => toFrameSummary(f, imagePath(f.id)));
    },
  );

  app.get<{ Params: { id: string } }>('/frames/:id/image', { schema: { params: idParams } }, async (req, reply) => {
    const frame = await store.getFrame(req.params.id, scope(req));
    if (!frame) throw new CloudError('FRAME_NOT_FOUND', 'no such frame');
    const obj = await objects.openRead(frame.objectKey);
    if (!obj) throw new CloudError('FRAME_NOT_FOUND', 'the frame is recorded but its image is gone');
    return reply
      .type('image/jpeg')
      .header('content-length', obj.bytes)
      .header('etag', `"${frame.sha256}"`)
      // A frame's bytes never change once recorded.
      .header('cache-control', 'private, max-age=31536000, immutable')
      .send(obj.stream);
  });
};

export function toCameraSummary(c: CameraWithStats): CameraSummary {
  return { id: c.id, key: c.key, name: c.name, frames: c.frames, lastCapturedAt: c.lastCapturedAt };
}

export function toFrameSummary(f: FrameRecord, imageUrl: string): FrameSummary {
  return {
    id: f.id,
    cameraId: f.cameraId,
    capturedAt: f.capturedAt,
    variant: f.variant,
    bytes: f.bytes,
    sha256: f.sha256,
    dhash: f.dhash,
    receivedAt: f.receivedAt,
    imageUrl,
  };
}
