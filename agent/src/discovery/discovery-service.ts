// The Discovery service: a round at start-up and every `intervalMs` — probe (multicast, plus
// the unicast sweep when configured), ask each camera that is new, moved, rebooted or failing
// what it is, update the registry, and report each change through `onChange` so the agent can
// start, repoint or stop capture workers.
//
// A camera that refuses us (wrong password) or fails is recorded with its error and asked
// again only on a backoff (lib/backoff: 30 s, 1, 2, 5, 10, then 30 min, never more than once a
// round) — unless its credentials changed since, then at the next round. A round that could not
// probe at all (no interface, socket error) changes nothing: our own failure never makes
// cameras "lost".
import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { DiscoveryConfig } from '../config.js';
import { backoffDelay } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { errorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Service } from '../lib/service.js';
import { Waker } from '../lib/waker.js';
import type { CameraChangeEvent, CameraRegistry } from '../cameras/camera-registry.js';
import { isProvisionalKey } from '../cameras/camera-key.js';
import type { CredentialSource, CredentialsSeed } from '../cameras/credentials.js';
import { OnvifDevice } from './onvif-device.js';
import { OnvifError, isOnvifError } from './onvif-errors.js';
import { neighbourMac } from './arp.js';
import { probeMulticast, scopeValue, sweepUnicast, type ProbeMatch } from './ws-discovery.js';

/** A camera's whole description (seven calls or so) must finish within this many call timeouts. */
const DESCRIBE_CALL_BUDGET = 8;

export interface DiscoveryServiceOptions {
  registry: CameraRegistry;
  credentials: CredentialSource & {
    importSeed?(seed: CredentialsSeed | undefined, now: number): string[];
    rekey?(from: string, to: string, now: number): boolean;
  };
  config: DiscoveryConfig;
  clock: Clock;
  log: Logger;
  /** Every change the registry makes, as it is made. A throwing listener is logged, not fatal. */
  onChange?: (e: CameraChangeEvent) => void;
  /** The config file's cameraCredentials: imported into the encrypted store at start when it changed. */
  credentialsSeed?: CredentialsSeed | undefined;
  /**
   * Tests and the bench: where probes go. `multicast: null` skips the multicast probe (cameras
   * on loopback are found by the sweep); `sweepPort` replaces 3702.
   */
  probe?: { multicast?: { address: string; port: number } | null; sweepPort?: number };
  dispatcher?: Dispatcher;
  random?: () => number;
  /** The neighbour table to read MACs of unidentified cameras from (tests); default /proc/net/arp. */
  arpTable?: string;
}

export interface DiscoveryStatus {
  rounds: number;
  /** Monotonic ms of the end of the last round that completed (probe and questions), or null. */
  lastSuccessAt: number | null;
  /** Epoch ms of the same. */
  lastSuccessWallAt: number | null;
  lastRoundMs: number | null;
  /** Why the last round failed ("DISCOVERY_SOCKET: ..."), null after a good one. */
  lastError: string | null;
  /** Cameras that answered the last probe. */
  answered: number;
  /** Questions asked and refused, over the service's life (tests and the bench count them). */
  queries: number;
  queryFailures: number;
}

interface DeviceState {
  device: OnvifDevice;
  /** Asked successfully since this process started. */
  described: boolean;
  instanceId: string | null;
  metadataVersion: string | null;
  failures: number;
  /** Monotonic ms before which a failed camera is not asked again (unless its credentials changed). */
  retryAt: number;
  /** Which credentials the last failure was with (a hash, in memory only). */
  failedWith: string | null;
}

export class DiscoveryService implements Service {
  readonly #waker: Waker;
  readonly #devices = new Map<string, DeviceState>();
  readonly #status: DiscoveryStatus = {
    rounds: 0,
    lastSuccessAt: null,
    lastSuccessWallAt: null,
    lastRoundMs: null,
    lastError: null,
    answered: 0,
    queries: 0,
    queryFailures: 0,
  };

  constructor(private readonly o: DiscoveryServiceOptions) {
    this.#waker = new Waker(o.clock);
  }

  status(): DiscoveryStatus {
    return { ...this.#status };
  }

  /**
   * Time-based health: a round succeeded within twice the interval (plus the time a round may
   * take). Says why when it did not.
   */
  check(): { ok: boolean; reason: string | null } {
    const { config, clock } = this.o;
    if (!config.enabled) return { ok: true, reason: null };
    const allowance = 2 * config.intervalMs + config.probeWaitMs + (config.sweep?.timeoutMs ?? 0) + DESCRIBE_CALL_BUDGET * config.callTimeoutMs;
    const last = this.#status.lastSuccessAt;
    if (last !== null && clock.monotonic() - last <= allowance) return { ok: true, reason: null };
    if (last === null && this.#status.rounds === 0) return { ok: true, reason: null };
    const since = last === null ? 'ever' : `for ${Math.round((clock.monotonic() - last) / 1000)} s`;
    return { ok: false, reason: `no discovery round succeeded ${since}${this.#status.lastError ? ` (${this.#status.lastError})` : ''}` };
  }

  /** Run a round now (a technician's "scan"), not at the end of the interval. */
  rediscover(): void {
    this.#waker.wake();
  }

  async start(signal: AbortSignal): Promise<void> {
    const { config, clock, log } = this.o;
    if (!config.enabled) {
      log.info('discovery is off (discovery.enabled = false)');
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      return;
    }
    const imported = this.o.credentials.importSeed?.(this.o.credentialsSeed, clock.now()) ?? [];
    if (imported.length) log.warn({ scopes: imported }, 'camera credentials imported from the config file; remove them from it (vigil-agent camera-credentials keeps them encrypted)');
    while (!signal.aborted) {
      const t0 = clock.monotonic();
      await this.round(signal);
      await this.#waker.wait(Math.max(0, config.intervalMs - (clock.monotonic() - t0)), signal);
    }
  }

  /** One round; never throws (its failure is recorded in status). */
  async round(signal: AbortSignal): Promise<void> {
    const { clock, log, config } = this.o;
    const t0 = clock.monotonic();
    this.#status.rounds++;
    let matches: ProbeMatch[];
    try {
      matches = await this.probe(signal);
    } catch (err) {
      if (signal.aborted) return;
      this.#status.lastError = `${errorCode(err) ?? 'DISCOVERY_FAILED'}: ${(err as Error).message}`;
      log.warn({ err: this.#status.lastError }, 'discovery round failed: no probe sent');
      return;
    }
    this.#status.answered = matches.length;
    const seen = new Set<string>();
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let m = matches[next++]; m && !signal.aborted; m = matches[next++]) {
        const key = await this.visit(m, signal);
        if (key) seen.add(key);
      }
    };
    await Promise.all(Array.from({ length: Math.min(config.queryConcurrency, Math.max(1, matches.length)) }, worker));
    if (signal.aborted) return; // a partial round must not count cameras as missing
    this.emit(this.o.registry.endRound(seen, config.lostAfterRounds));
    const ms = clock.monotonic() - t0;
    this.#status.lastRoundMs = ms;
    this.#status.lastSuccessAt = clock.monotonic();
    this.#status.lastSuccessWallAt = clock.now();
    this.#status.lastError = null;
    log.debug({ answered: matches.length, cameras: seen.size, ms: Math.round(ms) }, 'discovery round done');
  }

  private async probe(signal: AbortSignal): Promise<ProbeMatch[]> {
    const { config, log } = this.o;
    const target = this.o.probe?.multicast;
    const multicast =
      target === null
        ? Promise.resolve([])
        : probeMulticast({ interfaceAddress: config.interfaceAddress, waitMs: config.probeWaitMs, signal, log, ...(target ? { target } : {}) });
    const sweep = config.sweep
      ? sweepUnicast({
          ...config.sweep,
          interfaceAddress: config.interfaceAddress,
          signal,
          log,
          ...(this.o.probe?.sweepPort ? { port: this.o.probe.sweepPort } : {}),
          ...(config.interfaceAddress ? { skip: [config.interfaceAddress] } : {}),
        })
      : Promise.resolve([]);
    const [a, b] = await Promise.all([multicast, sweep]);
    const byEndpoint = new Map<string, ProbeMatch>();
    for (const m of [...a, ...b]) if (!byEndpoint.has(m.endpoint)) byEndpoint.set(m.endpoint, m);
    return [...byEndpoint.values()];
  }

  /** One camera that answered the probe: ask it what it is if needed; returns its registry key. */
  private async visit(m: ProbeMatch, signal: AbortSignal): Promise<string | null> {
    const { registry, clock, config, log } = this.o;
    const known = registry.byEndpoint(m.endpoint);
    let st = this.#devices.get(m.endpoint);
    if (!st) {
      st = {
        device: new OnvifDevice({ xaddr: m.xaddr, clock, timeoutMs: config.callTimeoutMs, passwordText: config.passwordText, dispatcher: this.o.dispatcher, log }),
        described: false,
        instanceId: m.instanceId,
        metadataVersion: m.metadataVersion,
        failures: 0,
        retryAt: 0,
        failedWith: null,
      };
      this.#devices.set(m.endpoint, st);
    }
    const rebooted = st.instanceId !== null && m.instanceId !== null && st.instanceId !== m.instanceId;
    if (rebooted) {
      log.info({ camera: known?.key, endpoint: m.endpoint }, 'camera rebooted (new discovery instance id): its clock is measured again');
      st.device.invalidateClock();
    }
    st.instanceId = m.instanceId;
    st.device.setXAddr(m.xaddr);
    const mac = known?.mac ?? scopeValue(m.scopes, 'mac') ?? neighbourMac(m.from, this.o.arpTable);
    const creds = this.o.credentials.forCamera({ key: known?.key ?? null, mac });
    st.device.setCredentials(creds?.credentials);
    const credsMark = creds ? createHash('sha256').update(`${creds.scope}\0${creds.credentials.username}\0${creds.credentials.password}`).digest('base64') : 'none';

    const needed =
      !st.described ||
      !known ||
      isProvisionalKey(known.key) ||
      !known.present ||
      known.xaddr !== m.xaddr ||
      known.lastError !== null ||
      rebooted ||
      st.metadataVersion !== m.metadataVersion;
    if (!needed) {
      registry.markSeen(known.key);
      return known.key;
    }
    const backingOff = st.failures > 0 && clock.monotonic() < st.retryAt && st.failedWith === credsMark;
    if (backingOff && known) {
      registry.markSeen(known.key);
      return known.key;
    }
    this.#status.queries++;
    // Real time, like each call's own timeout.
    const deadline = AbortSignal.timeout(DESCRIBE_CALL_BUDGET * config.callTimeoutMs);
    try {
      const d = await st.device.describe(AbortSignal.any([signal, deadline]));
      const events = registry.upsertDiscovered({
        endpoint: m.endpoint,
        xaddr: m.xaddr,
        name: scopeValue(m.scopes, 'name'),
        manufacturer: d.manufacturer,
        model: d.model,
        firmware: d.firmware,
        serial: d.serial,
        mac: d.mac,
        streamUri: d.streamUri,
        snapshotUri: d.snapshotUri,
      });
      // Credentials set for the provisional key ("ep-…") follow the camera to its real key.
      for (const e of events) {
        if (e.replaces && this.o.credentials.rekey?.(e.replaces, e.camera.key, clock.now())) {
          log.info({ from: e.replaces, to: e.camera.key }, 'camera credentials moved to the identified camera');
        }
      }
      this.emit(events);
      if (st.failures > 0) log.info({ endpoint: m.endpoint, xaddr: m.xaddr }, 'camera answers again');
      st.described = true;
      st.metadataVersion = m.metadataVersion;
      st.failures = 0;
      st.failedWith = null;
    } catch (e) {
      if (signal.aborted) return known?.key ?? null;
      const err = isOnvifError(e, 'ONVIF_ABORTED') ? new OnvifError('ONVIF_TIMEOUT', `${m.xaddr}: no full answer within ${DESCRIBE_CALL_BUDGET} call timeouts`) : e;
      const code = errorCode(err) ?? 'ONVIF_FAILED';
      const message = err instanceof Error ? err.message : String(err);
      this.#status.queryFailures++;
      st.failures++;
      st.failedWith = credsMark;
      const delay = backoffDelay(st.failures, this.o.random ?? Math.random);
      st.retryAt = clock.monotonic() + delay;
      log.warn({ endpoint: m.endpoint, xaddr: m.xaddr, code, err: message, failures: st.failures, retryInMs: delay }, 'camera did not answer our questions');
      this.emit(registry.recordFailure({ endpoint: m.endpoint, xaddr: m.xaddr, name: scopeValue(m.scopes, 'name'), error: { code, message } }));
    }
    return registry.byEndpoint(m.endpoint)?.key ?? null;
  }

  private emit(events: CameraChangeEvent[]): void {
    for (const e of events) {
      try {
        this.o.onChange?.(e);
      } catch (err) {
        this.o.log.error({ err, camera: e.camera.key, change: e.change }, 'camera change listener failed');
      }
    }
  }
}
