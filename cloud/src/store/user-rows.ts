import type { Row } from './sqlite-rows.js';
import type { UserRecord, UserRole } from './user-types.js';

// The users row → record mapper shared by the SQLite and PostgreSQL user stores.

export function toUser(r: Row): UserRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    role: r.role as UserRole,
    createdAt: r.created_at as number,
    disabledAt: (r.disabled_at as number | null) ?? null,
    failedLogins: r.failed_logins as number,
    lockedUntil: (r.locked_until as number | null) ?? null,
  };
}
