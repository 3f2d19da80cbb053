// The agent's supervision tree (DESIGN.md, "The agent"), and the view of it the HealthMonitor
// reads. Paths name a node by the ids from the root down: "cameras/camera:cam1/uploads".
//
//   agent (root)
//   ├── auth                         DeviceAuth
//   ├── cameras                      one child per camera, added as cameras are found
//   │   └── camera:<id>              budget `supervision.camera` (25/60 s)
//   │       ├── capture              CameraWorker (transient)
//   │       └── uploads              budget `supervision.variants` (50/60 s)
//   │           ├── compressed       Uploader (permanent)
//   │           └── original         Uploader (permanent)
//   ├── health                       HealthMonitor
//   └── heartbeat                    Heartbeat
//
// The WatchdogFeeder runs beside the tree (agent.ts): it starts first and stops last.
import { VARIANTS, type Variant } from '@vigil/protocol';
import type { AgentConfig } from './config.js';
import type { Clock } from './lib/clock.js';
import type { Logger } from './lib/logger.js';
import type { Service } from './lib/service.js';
import { Supervisor, type ChildStatus, type SupervisorEvent, type SupervisorStatus } from './supervise/supervisor.js';
import type { CameraWorker } from './capture/camera-worker.js';
import type { Uploader } from './upload/uploader.js';
import type { CameraSnapshot, UploaderSnapshot } from './health/checks.js';
import type { PartsView } from './health/health-monitor.js';

/** A camera's capture worker, as the tree runs it and the health checks read it. */
export interface CaptureEntry {
  worker: CameraWorker;
  name: string;
  intervalMs: number;
  captureTimeoutMs: number;
}

export interface TreeParts {
  auth: Service;
  /** Makes the uploader of one (camera, variant); called when a camera's node is created. */
  uploader: (camera: string, variant: Variant) => Uploader;
  /** Tests wrap an uploader here to inject a fault; the agent passes the uploader itself. */
  uploaderService?: (u: Uploader) => Service;
}

export class AgentTree implements PartsView {
  readonly root: Supervisor;
  readonly #supervisors = new Map<string, Supervisor>();
  readonly #captures = new Map<string, CaptureEntry>();
  readonly #uploaders: Uploader[] = [];
  readonly #parts: TreeParts;

  constructor(
    private readonly o: { config: AgentConfig; clock: Clock; log: Logger; onEvent?: (e: SupervisorEvent) => void },
    parts: TreeParts,
  ) {
    this.#parts = parts;
    this.root = this.supervisor('', 'agent', o.config.supervision.agent);
    this.root.add({ id: 'auth', restart: 'permanent', service: parts.auth });
    const cameras = this.supervisor('cameras', 'cameras', o.config.supervision.camera);
    this.root.add({ id: 'cameras', restart: 'permanent', service: cameras });
  }

  /** Camera keys with a node (a capture worker, or only uploads draining a backlog). */
  cameraKeys(): string[] {
    return [...this.#supervisors.keys()].filter((p) => /^cameras\/camera:[^/]+$/.test(p)).map((p) => p.slice('cameras/camera:'.length));
  }

  /**
   * The node of one camera, made once: its uploads subtree runs from then on, so a camera
   * that stops being captured (removed, lost) still drains its backlog.
   */
  addCamera(key: string): void {
    if (this.#supervisors.has(`cameras/camera:${key}`)) return;
    const { supervision } = this.o.config;
    const camera = this.supervisor(`cameras/camera:${key}`, `camera:${key}`, supervision.camera);
    const uploads = this.supervisor(`cameras/camera:${key}/uploads`, `uploads:${key}`, supervision.variants);
    for (const variant of VARIANTS) {
      const u = this.#parts.uploader(key, variant);
      this.#uploaders.push(u);
      uploads.add({ id: variant, restart: 'permanent', service: this.#parts.uploaderService?.(u) ?? u });
    }
    camera.add({ id: 'uploads', restart: 'permanent', service: uploads });
    this.#supervisors.get('cameras')!.add({ id: `camera:${key}`, restart: 'permanent', service: camera });
  }

  /**
   * Starts, replaces or (with null) stops a camera's capture worker. A replaced worker is
   * stopped first, so two never capture one camera; stopping is a normal stop, not a crash.
   */
  async setCapture(key: string, entry: CaptureEntry | null): Promise<void> {
    this.addCamera(key);
    const node = this.#supervisors.get(`cameras/camera:${key}`)!;
    if (this.#captures.has(key)) {
      await node.remove('capture');
      this.#captures.delete(key);
    }
    if (entry) {
      this.#captures.set(key, entry);
      node.add({ id: 'capture', restart: 'transient', service: entry.worker });
    }
  }

  /** Adds a service directly under the root (health, heartbeat). */
  add(id: string, service: Service): void {
    this.root.add({ id, restart: 'permanent', service });
  }

  /** Step 1 of the escalation: start a subtree that gave up again. */
  restartPart(path: string): boolean {
    const cut = path.lastIndexOf('/');
    const parent = this.#supervisors.get(cut < 0 ? '' : path.slice(0, cut));
    return parent?.restartChild(path.slice(cut + 1)) ?? false;
  }

  /** Every node by path, with whether it and all its ancestors are running. */
  nodes(): Map<string, { status: ChildStatus; running: boolean }> {
    const out = new Map<string, { status: ChildStatus; running: boolean }>();
    const walk = (s: SupervisorStatus, prefix: string, running: boolean): void => {
      for (const c of s.children) {
        const path = prefix ? `${prefix}/${c.id}` : c.id;
        const up = running && c.state === 'running';
        out.set(path, { status: c, running: up });
        if (c.supervisor) walk(c.supervisor, path, up && c.supervisor.state === 'running');
      }
    };
    const root = this.root.status();
    walk(root, '', root.state === 'running');
    return out;
  }

  /** Failed nodes whose parent still runs: the topmost failure (its children stopped with it). */
  failedParts(): { path: string; reason: string }[] {
    const out: { path: string; reason: string }[] = [];
    const nodes = this.nodes();
    for (const [path, { status }] of nodes) {
      if (status.state !== 'failed') continue;
      const cut = path.lastIndexOf('/');
      if (cut >= 0 && !nodes.get(path.slice(0, cut))?.running) continue;
      const crash = status.lastCrash;
      out.push({ path, reason: `${path} gave up${crash ? `: ${crash.code}: ${crash.message}` : ''}` });
    }
    return out;
  }

  cameras(): CameraSnapshot[] {
    const nodes = this.nodes();
    const { clock } = this.o;
    return [...this.#captures.values()].map(({ worker, name, intervalMs, captureTimeoutMs }) => {
      const s = worker.status();
      const failures = Object.values(s.failures).reduce((a, b) => a + b, 0) + Object.values(s.sinkFailures).reduce((a, b) => a + b, 0);
      return {
        id: s.camera,
        name,
        intervalMs,
        captureTimeoutMs,
        alive: nodes.get(`cameras/camera:${s.camera}/capture`)?.running ?? false,
        ticks: s.ticks,
        capturesOk: s.capturesOk,
        failures,
        inFlightSince: s.running ? s.lastAttemptAt : null,
        lastSuccessAt: s.lastSuccessAt,
        lastCaptureAt: s.lastSuccessAt === null ? null : Math.round(clock.now() - (clock.monotonic() - s.lastSuccessAt)),
        lastError: s.lastError ? `${s.lastError.code}: ${s.lastError.message}` : null,
      };
    });
  }

  uploaders(): UploaderSnapshot[] {
    const nodes = this.nodes();
    return this.#uploaders.map((u) => ({
      camera: u.camera,
      variant: u.variant as Variant,
      alive: nodes.get(`cameras/camera:${u.camera}/uploads/${u.variant}`)?.running ?? false,
      uploaded: u.status.uploaded,
      stepStartedAt: u.status.stepStartedAt,
      nextStepAt: u.status.nextStepAt,
    }));
  }

  private supervisor(path: string, name: string, budget: { maxRestarts: number; periodMs: number }): Supervisor {
    const { clock, log, onEvent } = this.o;
    const s = new Supervisor({ name, budget, clock, log: log.child({ supervisor: name }), ...(onEvent ? { onEvent } : {}) });
    this.#supervisors.set(path, s);
    return s;
  }
}
