// Cameras typed into the agent's config: captured as configured, never touched by discovery.
import type { AgentConfig, CameraConfig } from '../config.js';
import type { CameraSpec } from './camera-manager.js';
import type { CameraRecord } from './types.js';

/** A camera typed into the config: captured as configured, never touched by discovery. */
export function configuredCamera(config: AgentConfig, cam: CameraConfig): CameraSpec {
  return {
    key: cam.id,
    name: cam.name ?? cam.id,
    rtspUrl: cam.url ?? null,
    snapshotUrl: cam.snapshotUrl ?? null,
    username: cam.username,
    password: cam.password,
    transport: cam.transport,
    intervalMs: cam.intervalMs ?? config.captureIntervalMs,
    captureTimeoutMs: cam.captureTimeoutMs ?? config.captureTimeoutMs,
    capturePath: cam.capturePath,
  };
}

/** The record of a configured camera: what the config says, nothing discovered. */
export function configuredRecord(cam: CameraConfig, since: number): CameraRecord {
  const url = cam.url ?? cam.snapshotUrl!;
  return {
    key: cam.id,
    source: 'config',
    name: cam.name ?? cam.id,
    manufacturer: null,
    model: null,
    firmware: null,
    serial: null,
    mac: null,
    address: new URL(url).host,
    xaddr: null,
    streamUri: cam.url ?? null,
    snapshotUri: cam.snapshotUrl ?? null,
    present: true,
    firstSeenAt: since,
    lastSeenAt: since,
    lastError: null,
  };
}
