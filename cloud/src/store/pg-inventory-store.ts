// STUB: to be written (issue 9).
import type pg from 'pg';
import type { InventoryStore } from './inventory-types.js';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface PgInventoryStore extends InventoryStore {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PgInventoryStore {
  constructor(readonly pool: pg.Pool) {}
}
