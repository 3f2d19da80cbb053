// STUB: to be written (issue 9).
import type pg from 'pg';
import type { AnalysisStore } from './analysis-types.js';
import type { PgAlertStore } from './pg-alert-store.js';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface PgAnalysisStore extends AnalysisStore {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PgAnalysisStore {
  constructor(
    readonly pool: pg.Pool,
    readonly alerts: PgAlertStore,
  ) {}
}
