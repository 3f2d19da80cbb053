// The slot installer: RAUC, driven through its command line (docs/firmware.md, "OTA bundles").
// `rauc info` checks the bundle's signature against the keyring before anything is written;
// `rauc install` writes the inactive boot and root slots and, through the Pi tryboot backend,
// asks for a one-shot trial of them; `rauc status mark-good` commits the slot we booted.
import { runCommand } from '../lib/run-command.js';
import { VigilError } from '../lib/errors.js';

export interface BundleInfo {
  compatible: string;
  version: string;
}

/** What the updater needs from the installer; a test double stands in where no slots exist. */
export interface SlotInstaller {
  /** Verifies the bundle's signature and reads its manifest; rejects with BUNDLE_INVALID. */
  inspect(bundle: string): Promise<BundleInfo>;
  /** Writes the inactive slot and marks it for a one-shot trial boot. */
  install(bundle: string): Promise<void>;
  /** Commits the slot this trial boot runs. */
  markGood(): Promise<void>;
}

export const RAUC_INFO_TIMEOUT_MS = 120_000;
/** RAUC's words for a bundle it will not install: an install-check hook's refusal, a bad signature. */
const BUNDLE_REJECTED = /Bundle rejected|signature/i;
export const RAUC_INSTALL_TIMEOUT_MS = 30 * 60_000;

export interface RaucOptions {
  rauc: string;
  /** The CA the bundle's signature must chain to. */
  keyring: string;
}

export class RaucInstaller implements SlotInstaller {
  constructor(private readonly o: RaucOptions) {}

  async inspect(bundle: string): Promise<BundleInfo> {
    let out: string;
    try {
      out = await runCommand(this.o.rauc, ['info', `--keyring=${this.o.keyring}`, '--output-format=shell', bundle], RAUC_INFO_TIMEOUT_MS);
    } catch (err) {
      throw new VigilError('BUNDLE_INVALID', `the bundle failed verification: ${(err as Error).message}`, { cause: err });
    }
    // `--output-format=shell` prints RAUC_MF_COMPATIBLE='…', RAUC_MF_VERSION='…'
    const field = (name: string): string => new RegExp(`^RAUC_MF_${name}='?([^'\\n]*)'?$`, 'm').exec(out)?.[1] ?? '';
    return { compatible: field('COMPATIBLE'), version: field('VERSION') };
  }

  async install(bundle: string): Promise<void> {
    try {
      await runCommand(this.o.rauc, ['install', `--keyring=${this.o.keyring}`, bundle], RAUC_INSTALL_TIMEOUT_MS);
    } catch (err) {
      const message = (err as Error).message;
      // The bundle itself is bad (its payload does not read back intact, its signature fails):
      // final for this release. Anything else (a power cut, a full disk) is tried again.
      if (BUNDLE_REJECTED.test(message)) throw new VigilError('BUNDLE_INVALID', `rauc install refused the bundle: ${message}`, { cause: err });
      throw new VigilError('INSTALL_FAILED', `rauc install failed: ${message}`, { cause: err, retryable: true });
    }
  }

  async markGood(): Promise<void> {
    await runCommand(this.o.rauc, ['status', 'mark-good'], RAUC_INFO_TIMEOUT_MS);
  }
}
