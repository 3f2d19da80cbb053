import type { CameraInventoryItem } from '@vigil/protocol';

// What a device's camera inventory (PUT /v1/cameras/inventory) leaves in the store: per camera,
// what the device last said about it, and whether its latest inventory still lists it. Times
// are epoch ms.

/** One camera as its device's inventory last described it (the wire item without its key). */
export interface CameraInventory extends Omit<CameraInventoryItem, 'camera'> {
  /** false once a later inventory left it out; the description above is then the last one given. */
  listed: boolean;
  /** When the cloud received the inventory that last listed it. */
  receivedAt: number;
  /** When the cloud received the first inventory without it; null while listed. */
  unlistedAt: number | null;
}

export interface InventoryInput {
  deviceId: string;
  receivedAt: number;
  /** The device's whole list; camera keys are unique (the route checks). */
  cameras: readonly CameraInventoryItem[];
  /** An id for a camera the cloud has not seen before. */
  newCameraId: () => string;
}

/** What changed, by camera key (for the log). */
export interface InventoryChange {
  listed: number;
  /** Keys the device's previous inventory did not list (new cameras among them). */
  added: string[];
  /** Keys its previous inventory listed and this one does not. */
  unlisted: string[];
}

export interface InventoryStore {
  /**
   * Records a device's whole inventory in one transaction: each camera is found by its key (or
   * created, never duplicated), takes the inventory's name and description, and is marked
   * listed; the device's cameras it leaves out are marked unlisted and otherwise kept. Other
   * devices' cameras are not touched.
   */
  recordInventory(input: InventoryInput): Promise<InventoryChange>;
}
