// The cameras the agent knows, in SQLite: discovered ones keyed by MAC (else serial, else the
// WS-Discovery endpoint until the camera tells us more), configured ones by their config id.
// Discovery reports what it saw; the registry decides what changed and returns it as events:
//
//   found            a camera we did not know
//   address_changed  the same camera (same key) answering at another address — recorded with
//                    the time, in the row and in camera_changes
//   updated          anything else about it changed (firmware, stream URI, its last error)
//   lost             missing from `lostAfterRounds` discoveries in a row: present = false, kept
//   returned         found again after it was lost
//
// Configured cameras are never touched by discovery: a discovery result whose key is a
// configured camera's is ignored (and logged).
import type { CameraConfig } from '../config.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Db } from '../store/db.js';
import { endpointKey, cameraKey, isProvisionalKey, normalizeMac } from './camera-key.js';
import { configuredRecord } from './configured.js';
import { COLUMNS, fromRecord, toRecord, type Row } from './camera-rows.js';
import type { CameraChange, CameraRecord } from './types.js';

/** camera_changes keeps this many rows (the newest). */
export const CAMERA_CHANGES_KEPT = 1000;

/** A camera that answered every ONVIF question discovery asked. */
export interface DiscoveredCamera {
  endpoint: string;
  xaddr: string;
  /** From the ONVIF name scope, when the camera has one. */
  name: string | null;
  manufacturer: string | null;
  model: string | null;
  firmware: string | null;
  serial: string | null;
  mac: string | null;
  streamUri: string | null;
  snapshotUri: string | null;
}

/** A camera that answered discovery but not (all) our questions. */
export interface CameraFailure {
  endpoint: string;
  xaddr: string;
  name: string | null;
  error: { code: string; message: string };
}

export interface CameraChangeEvent {
  change: CameraChange;
  camera: CameraRecord;
  /** Epoch ms. */
  at: number;
  /** address_changed: where it was before. */
  previousAddress?: string | null;
  /** found: the provisional record (key "ep-…", from before the camera told us who it is) this one replaces; that key is gone. */
  replaces?: string;
}

export interface CameraChangeRow {
  key: string;
  change: CameraChange;
  at: number;
  address: string | null;
  previousAddress: string | null;
  detail: string | null;
}

/** Fields whose change is an 'updated' event. */
const DESCRIPTIVE = ['name', 'manufacturer', 'model', 'firmware', 'serial', 'mac', 'xaddr', 'stream_uri', 'snapshot_uri'] as const;

/** "host" or "host:port" of an XAddr (the port when it is not the scheme's default). */
export function addressOf(xaddr: string): string | null {
  try {
    return new URL(xaddr).host || null;
  } catch {
    return null;
  }
}

export class CameraRegistry {
  readonly #db: Db;
  readonly #all;
  readonly #get;
  readonly #byMac;
  readonly #byEndpoint;
  readonly #bySerial;
  readonly #upsert;
  readonly #delete;
  readonly #seen;
  readonly #change;
  readonly #prune;
  readonly #changes;
  readonly #changesOf;

  constructor(private readonly o: { db: Db; clock: Clock; log: Logger }) {
    const db = (this.#db = o.db);
    this.#all = db.prepare<[], Row>('SELECT * FROM cameras ORDER BY source DESC, first_seen_at, key');
    this.#get = db.prepare<[string], Row>('SELECT * FROM cameras WHERE key = ?');
    this.#byMac = db.prepare<[string], Row>('SELECT * FROM cameras WHERE mac = ?');
    this.#byEndpoint = db.prepare<[string], Row>("SELECT * FROM cameras WHERE endpoint = ? AND source = 'onvif' ORDER BY key LIKE 'ep-%', last_seen_at DESC");
    this.#bySerial = db.prepare<[string], Row>("SELECT * FROM cameras WHERE serial = ? AND source = 'onvif' AND key NOT LIKE 'ep-%' ORDER BY last_seen_at DESC");
    this.#upsert = db.prepare(
      `INSERT INTO cameras (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')})
       ON CONFLICT (key) DO UPDATE SET ${COLUMNS.filter((c) => c !== 'key').map((c) => `${c} = excluded.${c}`).join(', ')}`,
    );
    this.#delete = db.prepare('DELETE FROM cameras WHERE key = ?');
    this.#seen = db.prepare("UPDATE cameras SET last_seen_at = ?, missed_rounds = 0 WHERE key = ? AND source = 'onvif'");
    this.#change = db.prepare('INSERT INTO camera_changes (camera_key, change, at, address, previous_address, detail) VALUES (?, ?, ?, ?, ?, ?)');
    this.#prune = db.prepare('DELETE FROM camera_changes WHERE id <= (SELECT max(id) FROM camera_changes) - ?');
    this.#changes = db.prepare<[number], Record<string, unknown>>('SELECT * FROM camera_changes ORDER BY id DESC LIMIT ?');
    this.#changesOf = db.prepare<[string, number], Record<string, unknown>>('SELECT * FROM camera_changes WHERE camera_key = ? ORDER BY id DESC LIMIT ?');
  }

  list(): CameraRecord[] {
    return this.#all.all().map(toRecord);
  }

  get(key: string): CameraRecord | undefined {
    const r = this.#get.get(key);
    return r && toRecord(r);
  }

  /** The discovered camera with this WS-Discovery endpoint (an identified one before a provisional one). */
  byEndpoint(endpoint: string): CameraRecord | undefined {
    const r = this.#byEndpoint.get(endpoint);
    return r && toRecord(r);
  }

  /** The WS-Discovery endpoint a discovered camera was last seen with. */
  endpointOf(key: string): string | null {
    return this.#get.get(key)?.endpoint ?? null;
  }

  /** Newest first; all cameras or one. */
  history(key?: string, limit = 50): CameraChangeRow[] {
    const rows = key === undefined ? this.#changes.all(limit) : this.#changesOf.all(key, limit);
    return rows.map((r) => ({
      key: r.camera_key as string,
      change: r.change as CameraChange,
      at: r.at as number,
      address: r.address as string | null,
      previousAddress: r.previous_address as string | null,
      detail: r.detail as string | null,
    }));
  }

  /**
   * Makes the configured cameras' records match the config: new ones are found, changed ones
   * updated, ones no longer configured deleted (their uploads still drain from the queue).
   */
  syncConfig(cameras: CameraConfig[]): CameraChangeEvent[] {
    const now = this.o.clock.now();
    return this.#db.transaction(() => {
      const events: CameraChangeEvent[] = [];
      const ids = new Set(cameras.map((c) => c.id));
      for (const r of this.#all.all()) if (r.source === 'config' && !ids.has(r.key)) this.#delete.run(r.key);
      for (const cam of cameras) {
        const rec = configuredRecord(cam, now);
        const old = this.#get.get(cam.id);
        if (old?.source === 'onvif') this.o.log.warn({ camera: cam.id }, 'a configured camera has the key of a discovered one: the configured one wins');
        const row: Row = {
          ...fromRecord(rec),
          first_seen_at: old?.source === 'config' ? old.first_seen_at : now,
          last_seen_at: now,
        };
        this.#upsert.run(row);
        if (!old || old.source !== 'config') events.push(this.event('found', row, now));
        else if (['name', 'address', 'stream_uri', 'snapshot_uri'].some((c) => old[c as keyof Row] !== row[c as keyof Row])) events.push(this.event('updated', row, now));
      }
      return events;
    })();
  }

  /** A camera discovery identified: found, returned, moved or updated (or nothing changed). */
  upsertDiscovered(d: DiscoveredCamera): CameraChangeEvent[] {
    const now = this.o.clock.now();
    const mac = normalizeMac(d.mac);
    return this.#db.transaction(() => {
      const existing = this.identify(mac, d.serial, d.endpoint);
      const key = existing?.key ?? cameraKey({ mac, serial: d.serial, endpoint: d.endpoint });
      const clash = existing ? undefined : this.#get.get(key);
      if (existing?.source === 'config' || clash?.source === 'config') {
        this.o.log.warn({ camera: key, xaddr: d.xaddr }, 'discovered camera has the key of a configured camera: ignored');
        return [];
      }
      const events: CameraChangeEvent[] = [];
      const provisional = this.#get.get(endpointKey(d.endpoint));
      const replaces = provisional && provisional.key !== key && isProvisionalKey(provisional.key) ? provisional.key : undefined;
      if (replaces) this.#delete.run(replaces);
      const old = existing ?? clash;
      const address = addressOf(d.xaddr);
      const row: Row = {
        key,
        source: 'onvif',
        name: d.name ?? old?.name ?? ([d.manufacturer, d.model].filter(Boolean).join(' ') || key),
        manufacturer: d.manufacturer,
        model: d.model,
        firmware: d.firmware,
        serial: d.serial,
        mac: mac ?? old?.mac ?? null,
        endpoint: d.endpoint,
        address,
        xaddr: d.xaddr,
        stream_uri: d.streamUri,
        snapshot_uri: d.snapshotUri,
        present: 1,
        missed_rounds: 0,
        first_seen_at: old?.first_seen_at ?? provisional?.first_seen_at ?? now,
        last_seen_at: now,
        address_changed_at: old?.address_changed_at ?? null,
        last_error_code: null,
        last_error_message: null,
        last_error_at: null,
      };
      const moved = old !== undefined && old.address !== null && old.address !== address;
      if (moved) row.address_changed_at = now;
      this.#upsert.run(row);
      if (!old) {
        events.push({ ...this.event('found', row, now, replaces ? `replaces ${replaces}` : null), ...(replaces ? { replaces } : {}) });
      } else {
        if (!old.present) events.push(this.event('returned', row, now));
        if (moved) events.push({ ...this.event('address_changed', row, now, null, old.address), previousAddress: old.address });
        const changed = DESCRIPTIVE.some((c) => old[c] !== row[c]) || old.last_error_code !== null;
        if (!moved && old.present && changed) events.push(this.event('updated', row, now));
      }
      return events;
    })();
  }

  /**
   * A camera answered discovery but a question failed (wrong password, timeout...). A known
   * camera keeps its record and gets the error; an unknown one gets a provisional record keyed
   * by its endpoint, so the problem is visible per camera ("ep-…: ONVIF_AUTH_FAILED").
   */
  recordFailure(f: CameraFailure): CameraChangeEvent[] {
    const now = this.o.clock.now();
    return this.#db.transaction(() => {
      const old = this.#byEndpoint.get(f.endpoint);
      const address = addressOf(f.xaddr);
      if (old) {
        const provisional = isProvisionalKey(old.key);
        const row: Row = {
          ...old,
          // Only a provisional record follows the address: a known camera moves when it is identified there.
          ...(provisional ? { address, xaddr: f.xaddr, name: f.name ?? old.name } : {}),
          last_seen_at: now,
          missed_rounds: 0,
          last_error_code: f.error.code,
          last_error_message: f.error.message,
          last_error_at: now,
        };
        this.#upsert.run(row);
        const same = old.last_error_code === row.last_error_code && old.last_error_message === row.last_error_message && old.address === row.address;
        return same ? [] : [this.event('updated', row, now, `${f.error.code}: ${f.error.message}`)];
      }
      const key = endpointKey(f.endpoint);
      const row: Row = {
        key,
        source: 'onvif',
        name: f.name ?? `ONVIF camera at ${address ?? f.xaddr}`,
        manufacturer: null,
        model: null,
        firmware: null,
        serial: null,
        mac: null,
        endpoint: f.endpoint,
        address,
        xaddr: f.xaddr,
        stream_uri: null,
        snapshot_uri: null,
        present: 1,
        missed_rounds: 0,
        first_seen_at: now,
        last_seen_at: now,
        address_changed_at: null,
        last_error_code: f.error.code,
        last_error_message: f.error.message,
        last_error_at: now,
      };
      this.#upsert.run(row);
      return [this.event('found', row, now, `${f.error.code}: ${f.error.message}`)];
    })();
  }

  /** Seen by discovery and nothing to ask it: it is still there. */
  markSeen(key: string): void {
    this.#seen.run(this.o.clock.now(), key);
  }

  /**
   * The end of a discovery round: every discovered camera not in `seen` missed it; one that
   * missed `lostAfterRounds` in a row is lost (present = false; the record is kept).
   */
  endRound(seen: Iterable<string>, lostAfterRounds: number): CameraChangeEvent[] {
    const now = this.o.clock.now();
    const seenKeys = new Set(seen);
    return this.#db.transaction(() => {
      const events: CameraChangeEvent[] = [];
      for (const old of this.#all.all()) {
        if (old.source !== 'onvif' || seenKeys.has(old.key)) continue;
        const row: Row = { ...old, missed_rounds: old.missed_rounds + 1 };
        if (old.present && row.missed_rounds >= lostAfterRounds) row.present = 0;
        this.#upsert.run(row);
        if (old.present && !row.present) events.push(this.event('lost', row, now, `missed ${row.missed_rounds} discoveries`));
      }
      return events;
    })();
  }

  private identify(mac: string | null, serial: string | null, endpoint: string): Row | undefined {
    const agrees = (r: Row): boolean => !mac || !r.mac || r.mac === mac;
    if (mac) {
      const r = this.#byMac.get(mac);
      if (r) return r;
    }
    if (serial) {
      const r = this.#bySerial.all(serial).find(agrees);
      if (r) return r;
    }
    const r = this.#byEndpoint.all(endpoint).find((x) => !isProvisionalKey(x.key) && agrees(x));
    return r;
  }

  private event(change: CameraChange, row: Row, at: number, detail: string | null = null, previousAddress: string | null = null): CameraChangeEvent {
    this.#change.run(row.key, change, at, row.address, previousAddress, detail);
    this.#prune.run(CAMERA_CHANGES_KEPT);
    const camera = toRecord(row);
    const level = change === 'updated' ? 'debug' : 'info';
    this.o.log[level]({ camera: row.key, change, address: row.address, ...(previousAddress ? { previousAddress } : {}), ...(detail ? { detail } : {}) }, `camera ${change.replace('_', ' ')}`);
    return { change, camera, at };
  }
}
