// `vigil-agent doctor`: is this site working? Run by a technician next to the running agent,
// as a separate process. It reads what the agent keeps (registry, queue, token, update state),
// takes one fresh frame from every camera and asks the cloud; it changes nothing the agent
// relies on (only its own frames directory). Findings and their levels: findings.ts.
import { join } from 'node:path';
import type { AgentParts } from '../agent.js';
import { CameraRegistry } from '../cameras/camera-registry.js';
import type { AgentConfig } from '../config.js';
import { readFirmwareInfo } from '../health/system-facts.js';
import { systemClock } from '../lib/clock.js';
import { silentLogger } from '../lib/logger.js';
import { readUpdateState } from '../update/updater.js';
import { camerasFinding, doctorCameras, freshFrames } from './camera-checks.js';
import { cloudChecks } from './cloud-checks.js';
import { cardFinding, clockFinding, diskFinding, firmwareFinding, queueFindings, updateFinding } from './device-checks.js';
import { report, type DoctorReport } from './findings.js';

/** Where fresh frames go unless --frames says otherwise. */
export const doctorFramesDir = (config: AgentConfig): string => join(config.dataDir, 'doctor');

export interface DoctorOptions {
  /** Fresh frames are written here, one <camera>.jpg each. */
  framesDir: string;
  /** Aborting kills running captures and requests; the report still comes back. */
  signal?: AbortSignal | undefined;
}

export async function runDoctor(config: AgentConfig, parts: AgentParts, o: DoctorOptions): Promise<DoctorReport> {
  const at = Date.now();
  const registry = new CameraRegistry({ db: parts.db, clock: systemClock, log: silentLogger() });
  const cams = doctorCameras(config, registry.list(), parts.credentials, at);
  // Captures take seconds; the cloud and the local checks run meanwhile.
  const [frames, cloud, local] = await Promise.all([
    freshFrames(cams, { framesDir: o.framesDir, ffmpegPath: config.ffmpegPath, rtspTimeoutMs: config.rtspTimeoutMs, signal: o.signal }),
    cloudChecks({ cloudUrl: config.cloudUrl, vault: parts.vault, signal: o.signal }),
    (async () => {
      const fw = await readFirmwareInfo(config.system);
      return [cardFinding(config), await clockFinding(config, fw, Date.now()), ...queueFindings(config, parts.queue, Date.now()), firmwareFinding(config, fw), updateFinding(readUpdateState(parts.kv), Date.now()), await diskFinding(config)];
    })(),
  ]);
  return report(at, [camerasFinding(cams), ...frames, ...cloud, ...local]);
}
