// The device's setup PIN: 8 digits that open the status page (docs/agent.md, "The status page").
// The dashboard shows it (the heartbeat carries it) and it can be printed on the device label.
// Where it comes from, in order: the card's SETUP_PIN (adopted and stored), the PIN stored on
// /data, a new random one stored at once. Once stored it stays: a label printed today must still
// open the page after a reboot, an update or a lost card.
import { randomInt } from 'node:crypto';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { durableMove } from '../lib/fs-durable.js';
import { errorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

export const SETUP_PIN_DIGITS = 8;
export const SETUP_PIN_RE = /^\d{8}$/;
/** Only root (the agent) may read the stored PIN. */
export const SETUP_PIN_FILE_MODE = 0o600;

export type SetupPinSource = 'card' | 'stored' | 'generated';

export interface SetupPinResult {
  pin: string;
  source: SetupPinSource;
}

/** A new PIN, every one of the 10^8 equally likely (leading zeros kept). */
export function generateSetupPin(): string {
  return String(randomInt(0, 10 ** SETUP_PIN_DIGITS)).padStart(SETUP_PIN_DIGITS, '0');
}

/** Why `pin` is not a setup PIN, or null when it is one. */
export function setupPinProblem(pin: string): string | null {
  return SETUP_PIN_RE.test(pin) ? null : `a setup PIN is exactly ${SETUP_PIN_DIGITS} digits (0-9), got ${pin.length} characters`;
}

async function readStored(file: string, log: Logger): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return null;
    throw err;
  }
  const pin = text.trim();
  if (setupPinProblem(pin) !== null) {
    log.error({ file }, 'the stored setup PIN is damaged; a new one is made (the dashboard shows it)');
    return null;
  }
  // Written by hand or restored from a backup with a wider mode: only root may read it.
  if (((await stat(file)).mode & 0o777) !== SETUP_PIN_FILE_MODE) await chmod(file, SETUP_PIN_FILE_MODE);
  return pin;
}

/** Writes the PIN so that a power cut leaves the old file or the new one, never half of one. */
async function store(file: string, pin: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  await rm(tmp, { force: true });
  await writeFile(tmp, `${pin}\n`, { mode: SETUP_PIN_FILE_MODE, flag: 'wx' });
  await durableMove(tmp, file);
}

/**
 * The device's PIN: the card's when it gives a valid one (stored, so it outlives the card),
 * else the stored one, else a new one, stored before it is returned. A malformed card PIN is
 * logged and ignored (the stored or a new PIN still opens the page).
 */
export async function loadSetupPin(o: { file: string; pinFromCard?: string | undefined; log: Logger }): Promise<SetupPinResult> {
  const stored = await readStored(o.file, o.log);
  const card = o.pinFromCard?.trim();
  if (card !== undefined && card !== '') {
    const problem = setupPinProblem(card);
    if (problem === null) {
      if (card !== stored) {
        await store(o.file, card);
        o.log.info({ file: o.file }, stored === null ? 'setup PIN taken from the card' : "setup PIN replaced by the card's");
      }
      return { pin: card, source: 'card' };
    }
    o.log.error({ problem }, "the card's SETUP_PIN is not used: " + problem);
  }
  if (stored !== null) return { pin: stored, source: 'stored' };
  const pin = generateSetupPin();
  await store(o.file, pin);
  o.log.info({ file: o.file }, 'setup PIN made and stored (the dashboard shows it)');
  return { pin, source: 'generated' };
}

/**
 * The PIN as the agent's parts use it: loaded once (the first call), then the same answer. A
 * failed load (an unwritable /data) is not remembered: the next call tries again.
 */
export class SetupPin {
  #result: Promise<SetupPinResult> | undefined;
  #current: SetupPinResult | null = null;

  constructor(private readonly o: { file: string; pinFromCard?: () => string | undefined; log: Logger }) {}

  /** The PIN, loading (or making) it on the first call. */
  async get(): Promise<string> {
    this.#result ??= loadSetupPin({ file: this.o.file, pinFromCard: this.o.pinFromCard?.(), log: this.o.log }).then(
      (r) => (this.#current = r),
      (err: unknown) => {
        this.#result = undefined;
        throw err;
      },
    );
    return (await this.#result).pin;
  }

  /** The PIN once loaded (for the heartbeat, so the dashboard can show it); null before. */
  get current(): SetupPinResult | null {
    return this.#current;
  }
}
