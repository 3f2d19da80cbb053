import { execFile } from 'node:child_process';

/** `rauc info` reads the manifest and checks the CMS signature; a big bundle takes a while. */
export const RAUC_INFO_TIMEOUT_MS = 120_000;
/** What of rauc's output is kept in the refusal (its last lines say why). */
const MAX_DETAIL_CHARS = 2000;

export type VerifyResult = { ok: true } | { ok: false; detail: string };

/** Checks that a bundle file is signed by the configured CA. */
export interface BundleVerifier {
  verify(path: string, signal?: AbortSignal): Promise<VerifyResult>;
}

/**
 * Debian's `rauc info --keyring=<ca> <bundle>`: exit 0 only for a well-formed bundle whose
 * signature chains to the CA. No system.conf is needed for `info`.
 */
export class RaucVerifier implements BundleVerifier {
  readonly #keyring: string;
  readonly #rauc: string;
  readonly #timeoutMs: number;

  constructor(o: { keyring: string; rauc?: string; timeoutMs?: number }) {
    this.#keyring = o.keyring;
    this.#rauc = o.rauc ?? 'rauc';
    this.#timeoutMs = o.timeoutMs ?? RAUC_INFO_TIMEOUT_MS;
  }

  verify(path: string, signal?: AbortSignal): Promise<VerifyResult> {
    return new Promise((resolve) => {
      execFile(
        this.#rauc,
        ['info', `--keyring=${this.#keyring}`, path],
        { timeout: this.#timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024, ...(signal ? { signal } : {}) },
        (err, _stdout, stderr) => {
          if (!err) return resolve({ ok: true });
          const why = err.killed ? `rauc info did not finish within ${this.#timeoutMs} ms` : String(stderr).trim() || err.message;
          resolve({ ok: false, detail: why.slice(-MAX_DETAIL_CHARS) });
        },
      );
    });
  }
}
