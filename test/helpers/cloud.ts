// The real cloud, in-process on a loopback port, for agent and end-to-end tests.
import { loadConfig, type CloudConfigInput } from '../../cloud/src/config.js';
import { startCloud } from '../../cloud/src/main.js';
import type { CameraSummary, ClaimResponse, FrameSummary } from '@vigil/protocol';
import { tmpDir, type Teardown } from './tmp.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface TestCloud {
  url: string;
  adminToken: string;
  port: number;
  dataDir: string;
  close(): Promise<void>;
  /** Starts the cloud again on the same port and data dir (after `close`). */
  restart(): Promise<void>;
  admin<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  claimCode(site?: string): Promise<string>;
  claim(hardwareId?: string, site?: string): Promise<ClaimResponse>;
  /** Every frame of every camera of every device, through the admin API. */
  allFrames(): Promise<FrameSummary[]>;
}

export async function startTestCloud(t: Teardown, overrides: CloudConfigInput = {}): Promise<TestCloud> {
  const dataDir = overrides.dataDir ?? (await tmpDir(t, 'vigil-cloud-'));
  const base = { host: '127.0.0.1', port: 0, dataDir, adminToken: ADMIN_TOKEN, logLevel: 'silent' as const, ...overrides };
  let running = await startCloud(loadConfig({ env: {}, overrides: base }));
  const port = running.port;
  let open = true;
  const url = `http://127.0.0.1:${port}`;
  t.teardown(async () => {
    if (open) await running.close();
    open = false;
  });
  const admin = async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  const claimCode = async (site = 'test-site') => {
    const r = await admin<{ code: string }>('POST', '/admin/v1/claim-codes', { site });
    if (r.status !== 200 && r.status !== 201) throw new Error(`claim code: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.code;
  };
  return {
    url,
    adminToken: ADMIN_TOKEN,
    port,
    dataDir,
    async close() {
      if (open) await running.close();
      open = false;
    },
    async restart() {
      if (open) throw new Error('cloud is still running');
      running = await startCloud(loadConfig({ env: {}, overrides: { ...base, port } }));
      open = true;
    },
    admin,
    claimCode,
    async claim(hardwareId = 'test-hw-0001', site = 'test-site') {
      const code = await claimCode(site);
      const res = await fetch(`${url}/v1/claim`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code, hardwareId, name: 'test device' }),
      });
      if (res.status !== 200) throw new Error(`claim: ${res.status} ${await res.text()}`);
      return (await res.json()) as ClaimResponse;
    },
    async allFrames() {
      const cams = await admin<CameraSummary[]>('GET', '/admin/v1/cameras');
      const out: FrameSummary[] = [];
      for (const c of cams.body) {
        const r = await admin<FrameSummary[]>('GET', `/admin/v1/cameras/${c.id}/frames?limit=100000`);
        out.push(...r.body);
      }
      return out;
    },
  };
}
