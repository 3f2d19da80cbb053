import type { FastifyPluginAsync } from 'fastify';
import type { Readable } from 'node:stream';
import type { AppContext } from '../context.js';
import { CloudError } from '../errors.js';
import { newId } from '../lib/ids.js';
import type { DeploymentRecord, ReleaseRecord } from '../store/firmware-types.js';

export const BUNDLE_CONTENT_TYPE = 'application/octet-stream';
export const DEFAULT_MAX_CONCURRENT = 5;
export const DEFAULT_FAILURE_THRESHOLD = 1;
const MAX_DEVICE_IDS = 10_000;
/** Versions go into object keys, logs and the agent's comparisons: keep them plain. */
const VERSION_RE = '^[0-9A-Za-z][0-9A-Za-z._+~-]{0,63}$';

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;

const deploymentSchema = {
  body: {
    type: 'object',
    required: ['releaseId'],
    properties: {
      releaseId: { type: 'string', minLength: 1, maxLength: 100 },
      site: { type: 'string', minLength: 1, maxLength: 200 },
      deviceIds: { type: 'array', minItems: 1, maxItems: MAX_DEVICE_IDS, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 100 } },
      maxConcurrent: { type: 'integer', minimum: 1, maximum: MAX_DEVICE_IDS },
      failureThreshold: { type: 'integer', minimum: 1, maximum: MAX_DEVICE_IDS },
    },
  },
} as const;

interface DeploymentBody {
  releaseId: string;
  site?: string;
  deviceIds?: string[];
  maxConcurrent?: number;
  failureThreshold?: number;
}

/** A release as the admin API shows it (the object key is the store's business). */
function releaseView(r: ReleaseRecord) {
  return { id: r.id, version: r.version, bytes: r.bytes, sha256: r.sha256, verified: r.verified, createdAt: r.createdAt };
}

/** Releases and deployments under /admin/v1/firmware (the admin token is checked by the parent). */
export const firmwareAdminRoutes: FastifyPluginAsync<{ ctx: AppContext }> = async (app, { ctx }) => {
  const fw = ctx.store.firmware;

  // The upload has its own scope: its body is streamed, never parsed or buffered.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, _payload, done) => done(null));
    raw.post<{ Querystring: { version: string } }>(
      '/firmware/releases',
      {
        schema: { querystring: { type: 'object', required: ['version'], properties: { version: { type: 'string', pattern: VERSION_RE } } } },
        // Everything that needs no body is checked before a byte of it is read.
        onRequest: async (req) => {
          const length = req.headers['content-length'];
          if (length !== undefined && Number(length) > ctx.firmware.intake.maxBytes) {
            throw new CloudError('OBJECT_TOO_LARGE', `the bundle is ${length} bytes; the limit is ${ctx.firmware.intake.maxBytes} (maxBundleBytes)`);
          }
          const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
          if (type !== BUNDLE_CONTENT_TYPE) throw new CloudError('UNSUPPORTED_MEDIA_TYPE', `content-type must be ${BUNDLE_CONTENT_TYPE}, not ${type ?? 'missing'}`);
        },
      },
      async (req, reply) => {
        const { version } = req.query;
        try {
          if (await fw.releaseByVersion(version)) throw new CloudError('VERSION_EXISTS', `release ${version} exists already`);
          const bundle = await ctx.firmware.intake.receive(req.raw as Readable);
          try {
            const verifier = ctx.firmware.verifier;
            if (verifier) {
              const v = await verifier.verify(bundle.path);
              if (!v.ok) throw new CloudError('BUNDLE_SIGNATURE_INVALID', `the bundle is not a RAUC bundle signed for this keyring: ${v.detail}`);
            }
            const id = newId('rel');
            const release: ReleaseRecord = { id, version, bytes: bundle.bytes, sha256: bundle.sha256, objectKey: `firmware/${id}.raucb`, verified: verifier !== undefined, createdAt: ctx.now() };
            await ctx.objects.putFile(release.objectKey, bundle.path);
            if (!(await fw.createRelease(release))) {
              await ctx.objects.delete(release.objectKey);
              throw new CloudError('VERSION_EXISTS', `release ${version} exists already`);
            }
            if (!release.verified) req.log.warn({ version }, 'firmware release stored without a signature check (no firmwareKeyring configured)');
            else req.log.info({ version, bytes: release.bytes }, 'firmware release stored');
            return reply.status(201).send(releaseView(release));
          } finally {
            await ctx.firmware.intake.discard(bundle); // gone already when it was kept
          }
        } catch (err) {
          // Refused before the body was read to the end: with a Content-Length the rest is read
          // and dropped so the answer arrives on a clean connection; otherwise the connection closes.
          if (!req.raw.complete) {
            if (req.headers['content-length'] !== undefined) req.raw.resume();
            else void reply.header('connection', 'close');
          }
          throw err;
        }
      },
    );
  });

  app.get('/firmware/releases', async () => (await fw.listReleases()).map(releaseView));

  app.post<{ Body: DeploymentBody }>('/firmware/deployments', { schema: deploymentSchema }, async (req, reply) => {
    const b = req.body;
    if ((b.site === undefined) === (b.deviceIds === undefined)) throw new CloudError('BAD_REQUEST', 'give either site or deviceIds');
    const release = await fw.getRelease(b.releaseId);
    if (!release) throw new CloudError('RELEASE_NOT_FOUND', 'no such release');
    const devices = await ctx.store.listDevices();
    let siteId: string | null = null;
    let deviceIds: string[];
    if (b.site !== undefined) {
      const site = (await ctx.store.listSites()).find((s) => s.name === b.site || s.id === b.site);
      if (!site) throw new CloudError('NOT_FOUND', `no site ${JSON.stringify(b.site)}`);
      siteId = site.id;
      deviceIds = devices.filter((d) => d.siteId === site.id && d.revokedAt === null).map((d) => d.id);
      if (deviceIds.length === 0) throw new CloudError('BAD_REQUEST', `site ${site.name} has no active devices`);
    } else {
      const known = new Set(devices.map((d) => d.id));
      const unknown = b.deviceIds!.filter((id) => !known.has(id));
      if (unknown.length > 0) throw new CloudError('DEVICE_NOT_FOUND', `no such device: ${unknown.slice(0, 5).join(', ')}`);
      deviceIds = b.deviceIds!;
    }
    const d: DeploymentRecord = await fw.createDeployment({
      id: newId('dep'),
      releaseId: release.id,
      siteId,
      deviceIds,
      maxConcurrent: b.maxConcurrent ?? DEFAULT_MAX_CONCURRENT,
      failureThreshold: b.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD,
      now: ctx.now(),
    });
    req.log.info({ deploymentId: d.id, version: release.version, devices: deviceIds.length }, 'firmware deployment created');
    return reply.status(201).send({ ...d, devices: deviceIds.length });
  });

  app.get<{ Params: { id: string } }>('/firmware/deployments/:id', { schema: { params: idParams } }, async (req) => {
    const d = await fw.getDeployment(req.params.id);
    if (!d) throw new CloudError('DEPLOYMENT_NOT_FOUND', 'no such deployment');
    return { ...d, release: releaseView(d.release) };
  });

  app.post<{ Params: { id: string } }>('/firmware/deployments/:id/halt', { schema: { params: idParams } }, async (req) => {
    if (!(await fw.haltDeployment(req.params.id, 'halted by an admin', ctx.now()))) throw new CloudError('DEPLOYMENT_NOT_FOUND', 'no such deployment');
    req.log.warn({ deploymentId: req.params.id }, 'firmware deployment halted');
    const d = (await fw.getDeployment(req.params.id))!;
    return { ...d, release: releaseView(d.release) };
  });
};
