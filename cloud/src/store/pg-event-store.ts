// STUB: to be written (issue 9).
import type pg from 'pg';
import type { EventStore } from './event-types.js';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface PgEventStore extends EventStore {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PgEventStore {
  constructor(readonly pool: pg.Pool) {}
}
