import type Database from 'better-sqlite3';
import type { InventoryChange, InventoryInput, InventoryStore } from './inventory-types.js';
import type { Row } from './sqlite-rows.js';

/** The camera inventory in the embedded SQLite file (opened and migrated by SqliteStore). */
export class SqliteInventoryStore implements InventoryStore {
  readonly #db: Database.Database;
  readonly #s;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#s = prepare(db);
  }

  async recordInventory(i: InventoryInput): Promise<InventoryChange> {
    const s = this.#s;
    return this.#db
      .transaction((): InventoryChange => {
        const before = new Set((s.listedKeys.all(i.deviceId) as Row[]).map((r) => r.key as string));
        // Everything this device listed is unlisted first, then each camera of the new list is
        // listed again; a camera left out keeps the time it first went missing from the list.
        s.unlistAll.run(i.receivedAt, i.deviceId);
        for (const c of i.cameras) {
          // The same (device, key) as uploads and heartbeats: found, or created once.
          s.insertCamera.run(i.newCameraId(), i.deviceId, c.camera, i.receivedAt);
          const cameraId = (s.cameraIdByKey.get(i.deviceId, c.camera) as Row).id as string;
          s.setCameraName.run(c.name, cameraId);
          s.upsert.run({
            cameraId,
            deviceId: i.deviceId,
            name: c.name,
            source: c.source,
            manufacturer: c.manufacturer,
            model: c.model,
            firmware: c.firmware,
            serial: c.serial,
            mac: c.mac,
            address: c.address,
            capturePath: c.capturePath,
            present: c.present ? 1 : 0,
            lastError: c.lastError,
            lastSeenAt: c.lastSeenAt,
            receivedAt: i.receivedAt,
          });
        }
        s.touchDevice.run(i.receivedAt, i.deviceId);
        const now = new Set(i.cameras.map((c) => c.camera));
        return {
          listed: now.size,
          added: [...now].filter((k) => !before.has(k)),
          unlisted: [...before].filter((k) => !now.has(k)),
        };
      })
      .immediate();
  }
}

function prepare(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    listedKeys: p(
      `SELECT c.key FROM camera_inventory i JOIN cameras c ON c.id = i.camera_id
       WHERE i.device_id = ? AND i.unlisted_at IS NULL`,
    ),
    unlistAll: p('UPDATE camera_inventory SET unlisted_at = ? WHERE device_id = ? AND unlisted_at IS NULL'),
    insertCamera: p('INSERT INTO cameras (id, device_id, key, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (device_id, key) DO NOTHING'),
    cameraIdByKey: p('SELECT id FROM cameras WHERE device_id = ? AND key = ?'),
    // An empty name is no name: alerts and lists then fall back to the heartbeat's name or the key.
    setCameraName: p("UPDATE cameras SET name = nullif(?, '') WHERE id = ?"),
    upsert: p(
      `INSERT INTO camera_inventory (camera_id, device_id, name, source, manufacturer, model, firmware, serial, mac, address,
         capture_path, present, last_error, last_seen_at, received_at, unlisted_at)
       VALUES (:cameraId, :deviceId, :name, :source, :manufacturer, :model, :firmware, :serial, :mac, :address,
         :capturePath, :present, :lastError, :lastSeenAt, :receivedAt, NULL)
       ON CONFLICT (camera_id) DO UPDATE SET name = excluded.name, source = excluded.source, manufacturer = excluded.manufacturer,
         model = excluded.model, firmware = excluded.firmware, serial = excluded.serial, mac = excluded.mac, address = excluded.address,
         capture_path = excluded.capture_path, present = excluded.present, last_error = excluded.last_error,
         last_seen_at = excluded.last_seen_at, received_at = excluded.received_at, unlisted_at = NULL`,
    ),
    touchDevice: p('UPDATE devices SET inventory_received_at = ? WHERE id = ?'),
  };
}
