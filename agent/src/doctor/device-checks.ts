// The doctor's checks of the device itself, read the way the running agent reads them: the
// clock (NTP), the upload queue and dead letters, the firmware and its latest update, the disk.
import type { AgentConfig } from '../config.js';
import { readClockState, readDiskSpace, type FirmwareInfo } from '../health/system-facts.js';
import type { UploadQueue } from '../store/upload-queue.js';
import type { Stored as UpdateRecord } from '../update/updater.js';
import { CARD_NAMES, readCardSettings } from '../provision/card-settings.js';
import { finding, formatBytes, formatDuration, type Finding } from './findings.js';

/** Names whose values the report never shows. */
const SECRET_CARD_NAMES = new Set(['CLAIM_CODE', 'WIFI_PASSWORD', 'SETUP_PIN']);

/** The SD card's settings (vigil.txt): which are given (secrets by name only) and what is wrong with them. */
export function cardFinding(config: AgentConfig): Finding {
  const card = readCardSettings(config.card.file);
  if (!card) return finding('card', 'ok', `no settings on the SD card (${config.card.file || 'no card file configured'})`, null, { file: config.card.file, present: false });
  const given = CARD_NAMES.filter((n) => card.values[n] !== undefined);
  const shown = given.map((n) => (SECRET_CARD_NAMES.has(n) ? n : `${n}=${card.values[n]}`));
  const data = { file: card.file, present: true, names: given, warnings: card.warnings };
  const fact = `${card.file}: ${shown.length ? shown.join(', ') : 'no settings'}`;
  if (card.warnings.length > 0) {
    return finding('card', 'warn', `${fact}; ${card.warnings.length} line(s) ignored: ${card.warnings.join('; ')}`, "correct vigil.txt on the card's AUTOBOOT drive (docs/technician.md) and restart the device", data);
  }
  return finding('card', 'ok', fact, null, data);
}

export async function clockFinding(config: AgentConfig, firmware: FirmwareInfo, now: number): Promise<Finding> {
  const state = await readClockState(config.system.clockStatusCommand, now, firmware.builtAt);
  const data = { state, now: new Date(now).toISOString() };
  const fact = `${new Date(now).toISOString()}, `;
  if (state === 'synced') return finding('clock', 'ok', `${fact}synchronised (NTP)`, null, data);
  if (state === 'unsynced') {
    return finding('clock', 'warn', `${fact}not synchronised: capture times may be wrong`, "the site's network must let this device reach internet time servers (NTP, UDP port 123); it synchronises by itself once it can", data);
  }
  const cmd = config.system.clockStatusCommand.join(' ') || '(no command configured)';
  return finding('clock', 'warn', `${fact}cannot tell whether the clock is synchronised (${cmd} gave no answer)`, 'check that the time service (chrony) is running on this device', data);
}

export function queueFindings(config: AgentConfig, queue: UploadQueue, now: number): Finding[] {
  const depth = queue.depth();
  const total = depth.reduce((n, d) => n + d.count, 0);
  const oldest = depth.length ? Math.min(...depth.map((d) => d.oldestCapturedAt)) : null;
  const oldestAgeMs = oldest === null ? null : Math.max(0, now - oldest);
  const data = {
    depth: total,
    oldestAgeMs,
    byCamera: depth.map((d) => ({ camera: d.camera, variant: d.variant, count: d.count, oldestAgeMs: Math.max(0, now - d.oldestCapturedAt) })),
  };
  const limit = config.health.maxQueueAgeMs;
  let q: Finding;
  if (total === 0) q = finding('queue', 'ok', 'nothing waiting to upload', null, data);
  else if (oldestAgeMs! > limit) {
    q = finding(
      'queue',
      'warn',
      `${total} frames waiting to upload, the oldest ${formatDuration(oldestAgeMs!)} old (more than ${formatDuration(limit)})`,
      "uploads are behind: check the cloud check and the site's internet speed; frames upload by themselves once the line allows",
      data,
    );
  } else q = finding('queue', 'ok', `${total} frames waiting to upload, the oldest ${formatDuration(oldestAgeMs!)} old`, null, data);
  const dead = queue.deadLetterCount();
  const d =
    dead === 0
      ? finding('dead_letters', 'ok', 'none: every frame uploaded or waiting', null, { count: 0 })
      : finding('dead_letters', 'warn', `${dead} frames could not be uploaded and were set aside`, 'nothing to fix on site; tell Vigil support, who can see why in the device status', { count: dead });
  return [q, d];
}

export function firmwareFinding(config: AgentConfig, fw: FirmwareInfo): Finding {
  const data = { version: fw.version, slot: fw.slot, trial: fw.trial, builtAt: fw.builtAt };
  if (fw.version === null) {
    return finding('firmware', 'warn', `version unknown: no release file at ${config.system.releaseFile}`, 'this is not a Vigil firmware image, or the image is damaged: reinstall the firmware if this is a site device', data);
  }
  const fact = `Vigil firmware ${fw.version}, slot ${fw.slot ?? 'unknown'}`;
  if (fw.trial) {
    return finding('firmware', 'warn', `${fact}, trial boot of a new version`, 'leave the device powered: it keeps the new firmware once it has captured and uploaded, or goes back to the old one by itself', data);
  }
  return finding('firmware', 'ok', fact, null, data);
}

export function updateFinding(u: UpdateRecord | null, now: number): Finding {
  if (u === null) return finding('update', 'ok', 'no firmware update so far', null, { update: null });
  const data = { update: u };
  const when = `${formatDuration(Math.max(0, now - u.at))} ago`;
  const what = `update to ${u.version}: ${u.state} ${when}`;
  switch (u.state) {
    case 'committed':
      return finding('update', 'ok', what, null, data);
    case 'downloading':
    case 'installing':
    case 'trial':
      return finding('update', 'warn', `${what} (in progress)`, 'do not unplug the device until the update is committed', data);
    case 'failed':
    case 'reverted':
      return finding('update', 'warn', `${what}${u.reason ? `: ${u.reason}` : ''}; the device runs its previous firmware`, 'nothing to do on site: tell Vigil support', data);
  }
}

export async function diskFinding(config: AgentConfig): Promise<Finding> {
  const disk = await readDiskSpace(config.dataDir);
  if (disk === null) {
    return finding('disk', 'fail', `cannot read the data disk at ${config.dataDir}`, 'the data partition is missing or not mounted: restart the device; if this stays, replace the SD card', { dataDir: config.dataDir });
  }
  const data = { dataDir: config.dataDir, ...disk };
  const fact = `${formatBytes(disk.freeBytes)} free of ${formatBytes(disk.totalBytes)} at ${config.dataDir}`;
  if (disk.freeBytes === 0) return finding('disk', 'fail', `${fact}: full, new frames cannot be kept`, 'check the cloud and token checks (uploads free the space); if they are OK, tell Vigil support', data);
  if (disk.freeBytes < config.health.minFreeDiskBytes) {
    return finding('disk', 'warn', `${fact}: nearly full (under ${formatBytes(config.health.minFreeDiskBytes)})`, 'frames waiting to upload fill it: check the cloud and token checks; old frames are dropped first', data);
  }
  return finding('disk', 'ok', fact, null, data);
}
