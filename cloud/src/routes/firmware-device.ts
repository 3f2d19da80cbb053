import { UPDATE_STATES, type FirmwareStatusRequest, type FirmwareTarget } from '@vigil/protocol';
import type { FastifyPluginAsync } from 'fastify';
import { createHash } from 'node:crypto';
import { requireDevice } from '../auth.js';
import type { AppContext } from '../context.js';
import { CloudError, errorBody } from '../errors.js';
import { parseRange } from '../firmware/range.js';

const MAX_REASON = 2000;

const statusSchema = {
  body: {
    type: 'object',
    required: ['deploymentId', 'releaseId', 'version', 'state', 'reason', 'at'],
    properties: {
      deploymentId: { type: ['string', 'null'], minLength: 1, maxLength: 100 },
      releaseId: { type: 'string', minLength: 1, maxLength: 100 },
      version: { type: 'string', minLength: 1, maxLength: 100 },
      state: { type: 'string', enum: [...UPDATE_STATES] },
      reason: { type: ['string', 'null'], maxLength: MAX_REASON },
      at: { type: 'integer', minimum: 0 },
    },
  },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;

export const bundlePath = (releaseId: string) => `/v1/firmware/releases/${releaseId}/bundle`;

/** Strong validator over the exact answer: it changes whenever any byte of the answer would. */
function etagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
}

/** Whether an If-None-Match list names this ETag (or is "*"). */
function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => {
    const v = t.trim();
    return v === '*' || v === etag || v === `W/${etag}`;
  });
}

/** The device side of OTA under /v1 (behind the device token and rate limit). */
export const firmwareDeviceRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const fw = ctx.store.firmware;

  // Asking is also what takes a rollout slot: a waiting device is "in progress" from the
  // moment its target names the release.
  app.get('/firmware/target', async (req, reply) => {
    const device = requireDevice(req);
    const t = await fw.targetFor(device.id, ctx.now());
    const target: FirmwareTarget = t
      ? { release: { id: t.release.id, version: t.release.version, bytes: t.release.bytes, sha256: t.release.sha256, url: bundlePath(t.release.id) }, deploymentId: t.deploymentId }
      : { release: null, deploymentId: null };
    const body = JSON.stringify(target);
    const etag = etagOf(body);
    void reply.header('etag', etag).header('cache-control', 'no-cache');
    if (matches(req.headers['if-none-match'], etag)) return reply.status(304).send();
    return reply.type('application/json').send(body);
  });

  app.get<{ Params: { id: string } }>('/firmware/releases/:id/bundle', { schema: { params: idParams } }, async (req, reply) => {
    const device = requireDevice(req);
    const release = await fw.getRelease(req.params.id);
    // A release this device was not told to install does not exist for it.
    if (!release || !(await fw.deviceMayFetch(device.id, release.id))) throw new CloudError('RELEASE_NOT_FOUND', 'no such release for this device');
    const etag = `"${release.sha256}"`;
    const ifRange = req.headers['if-range'];
    // If-Range with another validator: the client's partial copy is of other bytes; send all.
    const range = ifRange !== undefined && ifRange !== etag ? { kind: 'full' as const } : parseRange(req.headers.range, release.bytes);
    void reply.header('accept-ranges', 'bytes').header('etag', etag).header('content-type', 'application/octet-stream');
    if (range.kind === 'unsatisfiable') {
      return reply
        .status(416)
        .header('content-range', `bytes */${release.bytes}`)
        .type('application/json')
        .send(errorBody(416, 'RANGE_NOT_SATISFIABLE', `the range ${req.headers.range} is outside the ${release.bytes}-byte bundle`));
    }
    const opts = range.kind === 'partial' ? { start: range.start, end: range.end } : {};
    const obj = await ctx.objects.openRead(release.objectKey, opts);
    if (!obj) throw new CloudError('OBJECT_MISSING', 'the bundle is missing from the object store');
    if (range.kind === 'partial') {
      void reply
        .status(206)
        .header('content-range', `bytes ${range.start}-${range.end}/${release.bytes}`)
        .header('content-length', range.end - range.start + 1);
    } else {
      void reply.header('content-length', release.bytes);
    }
    return reply.send(obj.stream);
  });

  app.post<{ Body: FirmwareStatusRequest }>('/firmware/status', { schema: statusSchema }, async (req) => {
    const device = requireDevice(req);
    const b = req.body;
    const now = ctx.now();
    if (b.deploymentId === null) {
      // An update not asked for by a deployment (installed by hand): nothing to count it toward.
      req.log.info({ deviceId: device.id, releaseId: b.releaseId, version: b.version, state: b.state, reason: b.reason }, 'firmware status outside a deployment');
      return { receivedAt: now, recorded: false };
    }
    const r = await fw.recordStatus({ deviceId: device.id, deploymentId: b.deploymentId, releaseId: b.releaseId, state: b.state, reason: b.reason, reportedAt: b.at, now });
    if (!r.ok) {
      if (r.reason === 'not_targeted') throw new CloudError('DEPLOYMENT_NOT_FOUND', 'no such deployment for this device');
      throw new CloudError('BAD_REQUEST', 'releaseId is not the release of this deployment');
    }
    req.log.info({ deviceId: device.id, deploymentId: b.deploymentId, state: b.state, reason: b.reason, recorded: r.recorded }, 'firmware status');
    if (r.halted) req.log.warn({ deploymentId: b.deploymentId, reason: r.deployment.haltReason }, 'firmware deployment halted');
    return { receivedAt: now, recorded: r.recorded };
  });
};
