// The doctor's cloud checks: does the configured cloud answer, and does it accept this device's
// stored token (the request DeviceAuth makes at start and hourly: GET /v1/device)?
import type { DeviceInfo } from '@vigil/protocol';
import type { TokenVault } from '../auth/token-vault.js';
import { CloudClient, CloudError } from '../cloud/cloud-client.js';
import { errorCode } from '../lib/errors.js';
import { finding, type Finding } from './findings.js';

/** Each doctor request to the cloud, connect to last byte: a technician is waiting. */
export const DOCTOR_CLOUD_TIMEOUT_MS = 5_000;
/** The cloud's unauthenticated liveness route (cloud/src/app.ts). */
export const CLOUD_HEALTH_PATH = '/healthz';

const CLAIM_TODO =
  'claim the device with a claim code from the Vigil dashboard (Devices, Add a device): type it on the status page, put it on the SD card (vigil.txt), or run "vigil-agent claim --code CODE"';

export async function cloudChecks(o: { cloudUrl: string; vault: TokenVault; timeoutMs?: number; signal?: AbortSignal | undefined }): Promise<Finding[]> {
  let token: string | undefined;
  let unreadable: string | null = null;
  try {
    token = o.vault.load();
  } catch (err) {
    unreadable = errorCode(err) ?? 'TOKEN_UNREADABLE';
  }
  const client = new CloudClient({ baseUrl: o.cloudUrl, token: () => token, timeoutMs: o.timeoutMs ?? DOCTOR_CLOUD_TIMEOUT_MS });
  try {
    const cloud = await reachable(client, o.cloudUrl, o.signal);
    const tokenFinding = await tokenCheck(client, token, unreadable, cloud.level === 'ok', o.signal);
    return [cloud, tokenFinding];
  } finally {
    await client.close();
  }
}

async function reachable(client: CloudClient, url: string, signal?: AbortSignal): Promise<Finding> {
  const t0 = performance.now();
  try {
    await client.call('GET', CLOUD_HEALTH_PATH, undefined, { auth: false, ...(signal ? { signal } : {}) });
    const ms = Math.round(performance.now() - t0);
    return finding('cloud', 'ok', `${url} answers (${ms} ms)`, null, { url, reachable: true, ms });
  } catch (err) {
    const ms = Math.round(performance.now() - t0);
    const code = errorCode(err) ?? 'CLOUD_UNREACHABLE';
    const msg = err instanceof Error ? err.message : String(err);
    const status = err instanceof CloudError ? err.status : undefined;
    const data = { url, reachable: status !== undefined, ms, status: status ?? null, error: { code, message: msg } };
    if (status === undefined) {
      return finding(
        'cloud',
        'fail',
        `${url} cannot be reached: ${code} (${msg}); nothing can upload`,
        `check this device's network cable and the site's internet connection; the firewall must allow outgoing connections to ${hostOf(url)}`,
        data,
      );
    }
    if (status >= 500) {
      return finding('cloud', 'fail', `${url} answers with an error (${status}); uploads wait until it recovers`, 'the cloud is in trouble, not the site: tell Vigil support', data);
    }
    return finding('cloud', 'fail', `something answers at ${url}, but not the Vigil cloud (${status} on ${CLOUD_HEALTH_PATH})`, `check cloudUrl in the config file; a proxy or captive portal on the site's line can also cause this`, data);
  }
}

async function tokenCheck(client: CloudClient, token: string | undefined, unreadable: string | null, cloudUp: boolean, signal?: AbortSignal): Promise<Finding> {
  if (unreadable !== null) {
    return finding('token', 'fail', `the stored device token cannot be read (${unreadable}): it was sealed on other hardware or with another /data secret`, CLAIM_TODO, { stored: true, valid: false, error: { code: unreadable } });
  }
  if (token === undefined) return finding('token', 'fail', 'no device token: the device has not been claimed', CLAIM_TODO, { stored: false, valid: false });
  if (!cloudUp) {
    return finding('token', 'skip', 'not checked: the cloud cannot be reached', 'fix the cloud check first, then run vigil-agent doctor again', { stored: true, valid: null, checked: false });
  }
  try {
    const d = await client.call<DeviceInfo>('GET', '/v1/device', undefined, signal ? { signal } : {});
    return finding('token', 'ok', `accepted: device "${d.name}" (${d.deviceId}) at site "${d.site}"`, null, { stored: true, valid: true, checked: true, device: d });
  } catch (err) {
    const code = errorCode(err) ?? 'CLOUD_UNREACHABLE';
    const msg = err instanceof Error ? err.message : String(err);
    if (err instanceof CloudError && err.kind === 'auth') {
      return finding('token', 'fail', `the cloud refuses this device's token (${err.status ?? code}): uploads are paused`, `the device was removed or claimed again elsewhere: ${CLAIM_TODO}`, {
        stored: true,
        valid: false,
        checked: true,
        error: { code, message: msg },
      });
    }
    return finding('token', 'skip', `not checked: ${code} (${msg})`, 'run vigil-agent doctor again in a few minutes', { stored: true, valid: null, checked: false, error: { code, message: msg } });
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
