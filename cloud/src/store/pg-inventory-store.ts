import type pg from 'pg';
import type { InventoryChange, InventoryInput, InventoryStore } from './inventory-types.js';
import { all, inTransaction, one, run } from './pg-db.js';

/** The camera inventory in PostgreSQL (migrated by PgStore); same behaviour as SqliteInventoryStore. */
export class PgInventoryStore implements InventoryStore {
  constructor(readonly pool: pg.Pool) {}

  async recordInventory(i: InventoryInput): Promise<InventoryChange> {
    return inTransaction(this.pool, async (c): Promise<InventoryChange> => {
      // One inventory of a device at a time (two replicas may get a retry of the same PUT):
      // the keys listed before are then those the previous inventory left. NO KEY UPDATE, as
      // the heartbeat takes it, so it serialises with heartbeats of the device too.
      await one(c, 'SELECT id FROM devices WHERE id = $1 FOR NO KEY UPDATE', [i.deviceId]);
      const before = new Set(
        (
          await all(
            c,
            `SELECT c.key FROM camera_inventory i JOIN cameras c ON c.id = i.camera_id
             WHERE i.device_id = $1 AND i.unlisted_at IS NULL`,
            [i.deviceId],
          )
        ).map((r) => r.key as string),
      );
      // Everything this device listed is unlisted first, then each camera of the new list is
      // listed again; a camera left out keeps the time it first went missing from the list.
      await run(c, 'UPDATE camera_inventory SET unlisted_at = $1 WHERE device_id = $2 AND unlisted_at IS NULL', [i.receivedAt, i.deviceId]);
      for (const cam of i.cameras) {
        // The same (device, key) as uploads and heartbeats: found, or created once.
        await run(c, 'INSERT INTO cameras (id, device_id, key, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (device_id, key) DO NOTHING', [
          i.newCameraId(),
          i.deviceId,
          cam.camera,
          i.receivedAt,
        ]);
        // An empty name is no name: alerts and lists then fall back to the heartbeat's name or the key.
        const cameraId = (await one(c, "UPDATE cameras SET name = nullif($1, '') WHERE device_id = $2 AND key = $3 RETURNING id", [cam.name, i.deviceId, cam.camera]))!
          .id as string;
        await run(
          c,
          `INSERT INTO camera_inventory (camera_id, device_id, name, source, manufacturer, model, firmware, serial, mac, address,
             capture_path, present, last_error, last_seen_at, received_at, unlisted_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL)
           ON CONFLICT (camera_id) DO UPDATE SET name = excluded.name, source = excluded.source, manufacturer = excluded.manufacturer,
             model = excluded.model, firmware = excluded.firmware, serial = excluded.serial, mac = excluded.mac, address = excluded.address,
             capture_path = excluded.capture_path, present = excluded.present, last_error = excluded.last_error,
             last_seen_at = excluded.last_seen_at, received_at = excluded.received_at, unlisted_at = NULL`,
          [
            cameraId,
            i.deviceId,
            cam.name,
            cam.source,
            cam.manufacturer,
            cam.model,
            cam.firmware,
            cam.serial,
            cam.mac,
            cam.address,
            cam.capturePath,
            cam.present ? 1 : 0,
            cam.lastError,
            cam.lastSeenAt,
            i.receivedAt,
          ],
        );
      }
      await run(c, 'UPDATE devices SET inventory_received_at = $1 WHERE id = $2', [i.receivedAt, i.deviceId]);
      const now = new Set(i.cameras.map((cam) => cam.camera));
      return {
        listed: now.size,
        added: [...now].filter((k) => !before.has(k)),
        unlisted: [...before].filter((k) => !now.has(k)),
      };
    });
  }
}
