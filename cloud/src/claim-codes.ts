import { CloudError } from './errors.js';
import { newClaimCode, newId, normalizeClaimCode, sha256Hex } from './lib/ids.js';
import type { CloudStore } from './store/types.js';

export const MAX_SITE_NAME = 200;
export const MAX_CLAIM_CODE_TTL_S = 30 * 86_400;

export interface IssuedClaimCode {
  code: string;
  site: string;
  siteId: string;
  /** Unix epoch milliseconds. */
  expiresAt: number;
}

/**
 * Creates a one-time claim code for a site (the site is created by name if new). Only the
 * code's hash is stored: whoever reads the database cannot claim with it. Used by the admin
 * API and the CLI.
 */
export async function issueClaimCode(store: CloudStore, i: { site: string; ttlSeconds: number; now: number }): Promise<IssuedClaimCode> {
  const site = i.site.trim();
  if (!site || site.length > MAX_SITE_NAME) throw new CloudError('BAD_REQUEST', `site must be 1-${MAX_SITE_NAME} characters`);
  if (!Number.isInteger(i.ttlSeconds) || i.ttlSeconds < 1 || i.ttlSeconds > MAX_CLAIM_CODE_TTL_S) {
    throw new CloudError('BAD_REQUEST', `ttlSeconds must be a whole number from 1 to ${MAX_CLAIM_CODE_TTL_S}`);
  }
  const code = newClaimCode();
  const expiresAt = i.now + i.ttlSeconds * 1000;
  const rec = await store.createClaimCode({ siteName: site, newSiteId: newId('site'), codeHash: claimCodeHash(code), expiresAt, now: i.now });
  return { code, site: rec.name, siteId: rec.id, expiresAt };
}

export function claimCodeHash(code: string): string {
  return sha256Hex(normalizeClaimCode(code));
}
