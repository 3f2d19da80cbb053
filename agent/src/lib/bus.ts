import { EventEmitter } from 'node:events';
import type { Variant } from '@vigil/protocol';

// The in-process bus: one event reaches every interested part at once (a revoked token
// pauses every uploader; a new one wakes them all). Built in main.ts and passed in.
export interface BusEvents {
  'token:refreshed': [];
  'token:invalidated': [reason: string];
  'queue:enqueued': [camera: string, variant: Variant];
  'queue:drained': [camera: string, variant: Variant];
}

export class Bus extends EventEmitter<BusEvents> {
  constructor() {
    super();
    // Every uploader listens; a site with many cameras exceeds the default of 10.
    this.setMaxListeners(0);
  }
}
