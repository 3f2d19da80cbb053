// The MAC of a host on our own LAN segment, from the kernel's neighbour table: known before a
// camera lets us in, so credentials set "by the MAC on its label" apply to a camera that
// refuses the site default. Hosts behind a router have no entry here (the router's MAC is not
// theirs), and an entry is only a hint: the camera's key comes from what it says once it answers.
import { readFileSync } from 'node:fs';
import { normalizeMac } from '../cameras/camera-key.js';

export const ARP_TABLE = '/proc/net/arp';
/** ATF_COM: the entry is complete. */
const ATF_COM = 0x2;

export function neighbourMac(ip: string, table = ARP_TABLE): string | null {
  let text: string;
  try {
    text = readFileSync(table, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n').slice(1)) {
    const [addr, , flags, hw] = line.trim().split(/\s+/);
    if (addr === ip && hw && (parseInt(flags ?? '0', 16) & ATF_COM) !== 0) return normalizeMac(hw);
  }
  return null;
}
