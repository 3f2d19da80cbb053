import { createHash, randomBytes, hkdfSync } from 'node:crypto';
import { readFile, writeFile, mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncPath } from '../lib/fs-durable.js';

// Where a board's serial number lives: the device tree on a Raspberry Pi, the cpuinfo
// "Serial" line on older kernels, machine-id elsewhere (QEMU, a development machine).
export const SERIAL_SOURCES = ['/sys/firmware/devicetree/base/serial-number', '/proc/cpuinfo', '/etc/machine-id'] as const;

export async function readHardwareSerial(sources: readonly string[] = SERIAL_SOURCES): Promise<string> {
  for (const path of sources) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      continue;
    }
    const serial = path.endsWith('cpuinfo') ? /^Serial\s*:\s*([0-9a-f]+)\s*$/im.exec(text)?.[1] : text.replace(/\0/g, '').trim();
    if (serial && !/^0+$/.test(serial)) return serial;
  }
  throw new Error(`no hardware serial found in ${sources.join(', ')}`);
}

/** The identity sent when claiming: stable per board, without revealing the raw serial. */
export function hardwareId(serial: string): string {
  return createHash('sha256').update(`vigil-hw:${serial}`).digest('hex').slice(0, 32);
}

/** A random 32-byte secret kept on /data (mode 0600), created once. */
export async function loadOrCreateSecret(path: string): Promise<Buffer> {
  try {
    const s = await readFile(path);
    if (s.length === 32) return s;
    throw new Error(`${path} is ${s.length} bytes, expected 32`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dirname(path), { recursive: true });
  const secret = randomBytes(32);
  const tmp = `${path}.tmp`;
  await writeFile(tmp, secret, { mode: 0o600 });
  await fsyncPath(tmp);
  await rename(tmp, path);
  await fsyncPath(dirname(path));
  return secret;
}

/** What a device key seals; each purpose has its own key. */
export type DeviceKeyPurpose = 'device-token' | 'camera-credentials';

/**
 * A key that encrypts secrets at rest: HKDF-SHA256 over the board serial and the secret on
 * /data, one key per purpose. See docs/agent-security.md for what this does and does not protect.
 */
export function deriveDeviceKey(serial: string, secret: Buffer, purpose: DeviceKeyPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.concat([Buffer.from(serial, 'utf8'), secret]), `vigil/${purpose}`, 'aes-256-gcm v1', 32));
}

/** The key that encrypts the device token at rest. */
export function deriveTokenKey(serial: string, secret: Buffer): Buffer {
  return deriveDeviceKey(serial, secret, 'device-token');
}
