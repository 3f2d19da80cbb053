// STUB: to be written (issue 9).
import type pg from 'pg';
import type { FleetStore } from './fleet-types.js';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface PgFleetStore extends FleetStore {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PgFleetStore {
  constructor(readonly pool: pg.Pool) {}
}
