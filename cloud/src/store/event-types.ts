import type { RiskLevel } from '../analysis/analyser.js';
import type { NewEvent } from './analysis-types.js';

// Scene events as people read them, and the live stream's log. The stream is an append-only
// table numbered in commit order: every event and every alert change adds one message in the
// transaction that made it, so a client that reconnects with Last-Event-ID gets exactly what
// it missed, from the database, whichever process wrote it.

export interface EventRecord extends Omit<NewEvent, 'id'> {
  id: string;
  batchId: string;
  cameraId: string;
  cameraKey: string;
  cameraName: string | null;
  deviceId: string;
  deviceName: string;
  site: string;
  alertId: string | null;
  createdAt: number;
  /** The batch's frames, oldest first. */
  frames: { id: string; capturedAt: number }[];
}

export interface EventFilter {
  cameraId?: string | undefined;
  deviceId?: string | undefined;
  minLevel?: RiskLevel | undefined;
  /** Only events created strictly before this time (paging). */
  before?: number | undefined;
  limit: number;
}

export interface StreamMessage {
  /** Monotonic: the SSE id. */
  seq: number;
  /** 'event', 'alert.opened', 'alert.closed', ... */
  type: string;
  /** JSON text, sent as the SSE data as it is. */
  payload: string;
  createdAt: number;
}

export interface EventStore {
  getEvent(id: string): Promise<EventRecord | null>;
  /** Newest first. */
  listEvents(filter: EventFilter): Promise<EventRecord[]>;
  /** Messages after `seq`, in order, at most `limit`. */
  streamAfter(seq: number, limit: number): Promise<StreamMessage[]>;
  /** The newest message's seq (0 when none), and the oldest still kept (null when none). */
  streamBounds(): Promise<{ first: number | null; last: number }>;
  /** Drops messages created before `before`; how many. */
  pruneStream(before: number): Promise<number>;
}
