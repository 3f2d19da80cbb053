// Daily time windows ("22:00-07:00") and local time at a site, with the time zone database
// built into Node (Intl), so daylight-saving changes are handled without a table of our own.

export interface Hours {
  /** Minutes after local midnight. */
  start: number;
  end: number;
}

/** "HH:MM-HH:MM" → minutes; null when malformed or empty (start = end). Spans midnight when end < start. */
export function parseHours(s: string): Hours | null {
  const m = /^\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-3]|24):([0-5]\d)\s*$/.exec(s);
  if (!m) return null;
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (end > 24 * 60 || start === end) return null;
  return { start, end };
}

export interface LocalTime {
  /** Minutes after local midnight. */
  minutes: number;
  /** "2026-12-06 02:14 (Sunday), Europe/Paris" — for people and the model. */
  text: string;
}

export function localTime(at: number, timeZone: string): LocalTime {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'long',
      hourCycle: 'h23',
    })
      .formatToParts(new Date(at))
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  const hour = Number(parts.hour);
  const minute = Number(parts.minute);
  return {
    minutes: hour * 60 + minute,
    text: `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} (${parts.weekday}), ${timeZone}`,
  };
}

/** Whether local time `minutes` falls in the window (start inclusive, end exclusive). */
export function within(h: Hours, minutes: number): boolean {
  return h.start < h.end ? minutes >= h.start && minutes < h.end : minutes >= h.start || minutes < h.end;
}

/** Whether `at` is inside the window given as text, at the zone's local time; false for null. */
export function inHours(hours: string | null, at: number, timeZone: string): boolean {
  const h = hours === null ? null : parseHours(hours);
  return h !== null && within(h, localTime(at, timeZone).minutes);
}
