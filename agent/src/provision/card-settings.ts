// The card's settings: vigil.txt on the SD card's first partition (AUTOBOOT), written by
// `make flash` or by hand on a laptop (docs/firmware.md, "Card settings"). At boot
// `vigil-card read` copies it to /run/vigil/card.txt; the agent reads that copy. The network
// scripts read the same file for Wi-Fi and addresses; the agent uses CLOUD_URL, CLAIM_CODE and
// SETUP_PIN. A typo must not stop the device: every problem is a warning, and the value is left out.
import { readFileSync } from 'node:fs';

/** Every name the card may hold; the network ones are read by the firmware's scripts. */
export const CARD_NAMES = [
  'CLOUD_URL',
  'CLAIM_CODE',
  'SETUP_PIN',
  'WIFI_SSID',
  'WIFI_PASSWORD',
  'WIFI_COUNTRY',
  'ADDRESS',
  'GATEWAY',
  'DNS',
] as const;
export type CardName = (typeof CARD_NAMES)[number];

export interface CardSettings {
  /** Where they were read from. */
  file: string;
  values: Partial<Record<CardName, string>>;
  /** What was wrong with the file, one line each, naming the line number. */
  warnings: string[];
}

const CHECKS: Partial<Record<CardName, { ok: (v: string) => boolean; want: string }>> = {
  CLOUD_URL: { ok: (v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), want: 'an http:// or https:// URL' },
  CLAIM_CODE: { ok: (v) => /^[A-Za-z0-9 -]{4,64}$/.test(v), want: 'the claim code as the dashboard printed it (letters, digits, "-")' },
  SETUP_PIN: { ok: (v) => /^\d{8}$/.test(v), want: '8 digits' },
};

const isName = (n: string): n is CardName => (CARD_NAMES as readonly string[]).includes(n);

/** Parses vigil.txt's text: NAME=value lines, # comments, CRLF and a UTF-8 BOM accepted. */
export function parseCardSettings(text: string, file: string): CardSettings {
  const values: CardSettings['values'] = {};
  const warnings: string[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const line = raw.trim();
      const at = `${file} line ${i + 1}`;
      if (line === '' || line.startsWith('#')) return;
      const eq = line.indexOf('=');
      const name = eq < 0 ? line : line.slice(0, eq).trim();
      if (eq < 0 || !/^[A-Z][A-Z0-9_]*$/.test(name)) {
        warnings.push(`${at}: not NAME=value, skipped`);
        return;
      }
      if (!isName(name)) {
        warnings.push(`${at}: unknown setting ${name}, skipped`);
        return;
      }
      let value = line.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      const check = CHECKS[name];
      if (check && !check.ok(value)) {
        warnings.push(`${at}: ${name} must be ${check.want}, skipped`);
        return;
      }
      if (values[name] !== undefined) warnings.push(`${at}: ${name} given again, the later one is used`);
      values[name] = value;
    });
  return { file, values, warnings };
}

/** The card's settings, or undefined when there is no card file (a development machine, a card without one). */
export function readCardSettings(file: string): CardSettings | undefined {
  if (file === '') return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { file, values: {}, warnings: [`${file}: unreadable (${(err as Error).message})`] };
  }
  return parseCardSettings(text, file);
}
