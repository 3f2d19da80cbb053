// ONVIF credentials for discovered cameras: a site default and per-camera overrides (by camera
// key or MAC), sealed at rest with the device key like the device token (store/sealed-kv.ts).
// Set with `vigil-agent camera-credentials`; `cameraCredentials` in the config file is a seed,
// imported when it changes (so a later CLI change is not undone at the next start).
import { createHmac } from 'node:crypto';
import { paths, type AgentConfig } from '../config.js';
import { deriveDeviceKey, loadOrCreateSecret, readHardwareSerial, SERIAL_SOURCES } from '../auth/device-identity.js';
import { VigilError } from '../lib/errors.js';
import type { Kv } from '../store/kv.js';
import { SealedValue } from '../store/sealed-kv.js';
import type { CameraCredentials } from './types.js';
import { macKey } from './camera-key.js';

/** The scope of the site default. */
export const DEFAULT_SCOPE = 'default';

export interface CredentialsSeed {
  default?: CameraCredentials | undefined;
  /** By camera key ("mac-001122aabbcc", a config id) or MAC ("00:11:22:aa:bb:cc"). */
  cameras?: Record<string, CameraCredentials> | undefined;
}

interface Stored {
  v: 1;
  scopes: Record<string, CameraCredentials>;
  /** Per scope, an HMAC of the seed entry last imported: the same seed is not imported twice. */
  seeds: Record<string, string>;
}

const CAMERA_KEY = /^[A-Za-z0-9_-]{1,64}$/;
const MAC = /^[0-9a-fA-F]{2}([:-]?[0-9a-fA-F]{2}){5}$/;

/**
 * Normalises what a person typed: a MAC becomes the camera key it names ("mac-001122aabbcc");
 * a camera key stays; anything else is CREDENTIALS_SCOPE_INVALID.
 */
export function credentialScope(camera: string | undefined | null): string {
  if (camera === undefined || camera === null || camera === '' || camera === DEFAULT_SCOPE) return DEFAULT_SCOPE;
  const s = camera.trim();
  if (MAC.test(s)) return macKey(s)!;
  if (CAMERA_KEY.test(s)) return s;
  throw new VigilError('CREDENTIALS_SCOPE_INVALID', `"${camera}" is neither a camera key (letters, digits, "-", "_") nor a MAC address`);
}

/** What the discovery service needs: credentials for a camera, and which entry gave them. */
export interface CredentialSource {
  forCamera(cam: { key?: string | null; mac?: string | null }): { scope: string; credentials: CameraCredentials } | undefined;
}

export class CameraCredentialStore implements CredentialSource {
  readonly #sealed: SealedValue;

  constructor(
    kv: Kv,
    private readonly key: Buffer,
  ) {
    this.#sealed = new SealedValue(kv, key, { key: 'camera_credentials', aad: 'vigil camera credentials', unreadableCode: 'CREDENTIALS_UNREADABLE' });
  }

  /** The override for the camera's key, else for its MAC, else the site default. */
  forCamera(cam: { key?: string | null; mac?: string | null }): { scope: string; credentials: CameraCredentials } | undefined {
    const { scopes } = this.read();
    const tries = [cam.key ?? null, cam.mac ? macKey(cam.mac) : null, DEFAULT_SCOPE];
    for (const scope of tries) {
      const c = scope ? scopes[scope] : undefined;
      if (scope && c) return { scope, credentials: { ...c } };
    }
    return undefined;
  }

  /** Sets the default (camera undefined) or one camera's credentials. */
  set(camera: string | undefined, credentials: CameraCredentials, now: number): string {
    const scope = credentialScope(camera);
    if (!credentials.username) throw new VigilError('CREDENTIALS_INVALID', 'the username must not be empty');
    const s = this.read();
    s.scopes[scope] = { username: credentials.username, password: credentials.password };
    this.write(s, now);
    return scope;
  }

  remove(camera: string | undefined, now: number): boolean {
    const scope = credentialScope(camera);
    const s = this.read();
    if (!(scope in s.scopes)) return false;
    delete s.scopes[scope];
    this.write(s, now);
    return true;
  }

  /**
   * Moves a camera's own credentials to its new key (a provisional "ep-…" camera identified as
   * "mac-…"), unless the new key has its own. True when something moved.
   */
  rekey(from: string, to: string, now: number): boolean {
    const s = this.read();
    const c = s.scopes[from];
    if (!c || from === DEFAULT_SCOPE || to === DEFAULT_SCOPE) return false;
    delete s.scopes[from];
    s.scopes[to] ??= c;
    this.write(s, now);
    return true;
  }

  /** Scopes and usernames; never passwords. */
  list(): { scope: string; username: string }[] {
    return Object.entries(this.read().scopes)
      .map(([scope, c]) => ({ scope, username: c.username }))
      .sort((a, b) => (a.scope === DEFAULT_SCOPE ? -1 : b.scope === DEFAULT_SCOPE ? 1 : a.scope.localeCompare(b.scope)));
  }

  /**
   * Imports the config file's seed: each entry that differs from the one imported last time is
   * stored (overriding what is there); an unchanged seed leaves the store alone, so credentials
   * set later with the CLI survive restarts. Returns the scopes imported.
   */
  importSeed(seed: CredentialsSeed | undefined, now: number): string[] {
    if (!seed) return [];
    const entries: [string, CameraCredentials][] = [
      ...(seed.default ? [[DEFAULT_SCOPE, seed.default] as [string, CameraCredentials]] : []),
      ...Object.entries(seed.cameras ?? {}).map(([k, c]) => [credentialScope(k), c] as [string, CameraCredentials]),
    ];
    const s = this.read();
    const imported: string[] = [];
    for (const [scope, c] of entries) {
      const mark = createHmac('sha256', this.key).update(JSON.stringify([scope, c.username, c.password])).digest('base64url');
      if (s.seeds[scope] === mark) continue;
      s.scopes[scope] = { username: c.username, password: c.password };
      s.seeds[scope] = mark;
      imported.push(scope);
    }
    if (imported.length) this.write(s, now);
    return imported;
  }

  private read(): Stored {
    const text = this.#sealed.load();
    if (text === undefined) return { v: 1, scopes: {}, seeds: {} };
    const parsed = JSON.parse(text) as Stored;
    return { v: 1, scopes: parsed.scopes ?? {}, seeds: parsed.seeds ?? {} };
  }

  private write(s: Stored, now: number): void {
    this.#sealed.save(JSON.stringify(s), now);
  }
}

/** The credentials key of this device (board serial + /data secret), for the agent and the CLI. */
export async function loadCredentialsKey(config: AgentConfig): Promise<Buffer> {
  const serial = await readHardwareSerial(config.serialSources ?? SERIAL_SOURCES);
  const secret = await loadOrCreateSecret(paths(config).secret);
  return deriveDeviceKey(serial, secret, 'camera-credentials');
}
