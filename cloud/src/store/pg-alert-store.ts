// STUB: to be written (issue 9).
import type pg from 'pg';
import type { AlertStore } from './alert-types.js';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface PgAlertStore extends AlertStore {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PgAlertStore {
  constructor(readonly pool: pg.Pool) {}
}
