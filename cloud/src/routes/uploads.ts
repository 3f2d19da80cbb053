import {
  DHASH_HEX_LENGTH,
  isDhash,
  VARIANTS,
  type CompleteRequest,
  type CompleteResponse,
  type PresignRequest,
  type PresignResponse,
} from '@vigil/protocol';
import type { FastifyPluginAsync } from 'fastify';
import { requireDevice } from '../auth.js';
import type { AppContext } from '../context.js';
import { CloudError } from '../errors.js';
import { newId } from '../lib/ids.js';
import type { FrameIdentity, UploadRecord } from '../store/types.js';

export const MAX_CAMERA_KEY = 128;

const presignSchema = {
  body: {
    type: 'object',
    required: ['camera', 'capturedAt', 'variant', 'bytes', 'sha256', 'dhash'],
    properties: {
      camera: { type: 'string', minLength: 1, maxLength: MAX_CAMERA_KEY },
      capturedAt: { type: 'integer', minimum: 0 },
      variant: { type: 'string', enum: [...VARIANTS] },
      bytes: { type: 'integer', minimum: 1 },
      sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      // Checked with isDhash below; the length here only keeps huge strings out.
      dhash: { type: 'string', maxLength: DHASH_HEX_LENGTH },
    },
  },
} as const;

const completeSchema = {
  body: { type: 'object', required: ['uploadId'], properties: { uploadId: { type: 'string', minLength: 1, maxLength: 100 } } },
} as const;

/** presign → PUT the object → complete. Both API steps are safe to retry. */
export const uploadRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const { store, objects, config } = ctx;

  app.post<{ Body: PresignRequest }>('/uploads/presign', { schema: presignSchema }, async (req): Promise<PresignResponse> => {
    const device = requireDevice(req);
    const b = req.body;
    if (!isDhash(b.dhash)) throw new CloudError('BAD_REQUEST', `dhash must be ${DHASH_HEX_LENGTH} lower-case hex characters`);
    if (b.bytes > config.maxObjectBytes) {
      throw new CloudError('OBJECT_TOO_LARGE', `the object is ${b.bytes} bytes; the limit is ${config.maxObjectBytes}`);
    }
    const now = ctx.now();
    const camera = await store.ensureCamera(device.id, b.camera, newId('cam'), now);
    const identity: FrameIdentity = { deviceId: device.id, cameraId: camera.id, capturedAt: b.capturedAt, variant: b.variant };
    const frame = await store.findFrame(identity);
    if (frame) return { status: 'exists', frameId: frame.id };

    // A retried presign for the same bytes gets the same upload (and object key) again.
    let upload: Omit<UploadRecord, 'completedAt' | 'frameId'> | null = await store.findPendingUpload(identity, b.sha256, b.bytes);
    if (!upload) {
      const id = newId('upl');
      upload = {
        ...identity,
        id,
        bytes: b.bytes,
        sha256: b.sha256,
        dhash: b.dhash,
        objectKey: `frames/${device.id}/${camera.id}/${b.capturedAt}-${b.variant}-${id}.jpg`,
        createdAt: now,
      };
      await store.createUpload(upload);
    }
    const put = await objects.presignPut(upload.objectKey, { bytes: upload.bytes, sha256: upload.sha256 }, now);
    return { status: 'upload', uploadId: upload.id, method: put.method, url: put.url, headers: put.headers, expiresAt: put.expiresAt };
  });

  app.post<{ Body: CompleteRequest }>('/uploads/complete', { schema: completeSchema }, async (req): Promise<CompleteResponse> => {
    const device = requireDevice(req);
    const upload = await store.getUpload(req.body.uploadId, device.id);
    if (!upload) throw new CloudError('UPLOAD_NOT_FOUND', 'no such upload; presign again');
    if (upload.frameId !== null) return { frameId: upload.frameId, created: false };

    const stat = await objects.stat(upload.objectKey);
    if (!stat) throw new CloudError('OBJECT_MISSING', 'the object has not been uploaded (or did not pass its checks); PUT it first');
    if (stat.bytes !== upload.bytes || stat.sha256 !== upload.sha256) {
      // Gone, so the device's next PUT of the right bytes to this key is not refused as a
      // repeat (a bucket that honours If-None-Match) and wrong bytes do not linger.
      await objects.delete(upload.objectKey);
      throw new CloudError('OBJECT_MISMATCH', `the stored object (${stat.bytes} bytes, sha256 ${stat.sha256}) is not what was presigned`);
    }
    const r = await store.completeUpload(upload.id, newId('frm'), ctx.now());
    // The frame was already recorded from another upload: this copy is redundant.
    if (!r.created && r.frame.objectKey !== upload.objectKey) await objects.delete(upload.objectKey);
    req.log.debug({ frameId: r.frame.id, created: r.created }, 'upload completed');
    if (r.created) {
      if (r.frame.variant === 'compressed') ctx.analysis.wake();
      try {
        await ctx.fleet.onFrame(r.frame);
      } catch (err) {
        // The frame is recorded; the watch only missed one look at it.
        req.log.error({ err, frameId: r.frame.id }, 'fleet watch failed on a frame');
      }
    }
    return { frameId: r.frame.id, created: r.created };
  });
};
