// STUB: to be written (issue 9).
import type pg from 'pg';
import type { FirmwareStore } from './firmware-types.js';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface PgFirmwareStore extends FirmwareStore {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PgFirmwareStore {
  constructor(readonly pool: pg.Pool) {}
}
