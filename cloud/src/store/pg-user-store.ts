// STUB: to be written (issue 9).
import type pg from 'pg';
import type { UserStore } from './user-types.js';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface PgUserStore extends UserStore {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PgUserStore {
  constructor(readonly pool: pg.Pool) {}
}
