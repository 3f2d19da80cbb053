// The agent's supervision tree (DESIGN.md, "The agent"), and the view of it the HealthMonitor
// reads. Paths name a node by the ids from the root down: "cameras/camera:cam1/uploads".
//
//   agent (root)
//   ├── auth                         DeviceAuth
//   ├── cameras                      one child per camera (dynamic)
//   │   └── camera:<id>              budget `supervision.camera` (25/60 s)
//   │       ├── capture              CameraWorker (transient)
//   │       └── uploads              budget `supervision.variants` (50/60 s)
//   │           ├── compressed       Uploader (permanent)
//   │           └── original         Uploader (permanent)
//   ├── health                       HealthMonitor
//   └── heartbeat                    Heartbeat
//
// The WatchdogFeeder runs beside the tree (agent.ts): it starts first and stops last.
import type { Variant } from '@vigil/protocol';
import type { AgentConfig } from './config.js';
import type { Clock } from './lib/clock.js';
import type { Logger } from './lib/logger.js';
import type { Service } from './lib/service.js';
import { Supervisor, type ChildStatus, type SupervisorEvent, type SupervisorStatus } from './supervise/supervisor.js';
import type { CameraWorker } from './capture/camera-worker.js';
import type { Uploader } from './upload/uploader.js';
import type { CameraSnapshot, UploaderSnapshot } from './health/checks.js';
import type { PartsView } from './health/health-monitor.js';

export interface TreeParts {
  auth: Service;
  workers: { worker: CameraWorker; name: string; intervalMs: number; captureTimeoutMs: number }[];
  uploaders: Uploader[];
  /** Tests wrap an uploader here to inject a fault; the agent passes the uploader itself. */
  uploaderService?: (u: Uploader) => Service;
}

export class AgentTree implements PartsView {
  readonly root: Supervisor;
  readonly #supervisors = new Map<string, Supervisor>();
  readonly #workers: TreeParts['workers'];
  readonly #uploaders: Uploader[];

  constructor(
    private readonly o: { config: AgentConfig; clock: Clock; log: Logger; onEvent?: (e: SupervisorEvent) => void },
    parts: TreeParts,
  ) {
    const { supervision } = o.config;
    this.#workers = parts.workers;
    this.#uploaders = parts.uploaders;
    this.root = this.supervisor('', 'agent', supervision.agent);
    this.root.add({ id: 'auth', restart: 'permanent', service: parts.auth });
    const cameras = this.supervisor('cameras', 'cameras', supervision.camera);
    this.root.add({ id: 'cameras', restart: 'permanent', service: cameras });

    // A camera removed from the config still has a node: its uploaders drain its backlog.
    const ids = new Set([...parts.workers.map((w) => w.worker.status().camera), ...parts.uploaders.map((u) => u.camera)]);
    for (const id of ids) {
      const camera = this.supervisor(`cameras/camera:${id}`, `camera:${id}`, supervision.camera);
      const worker = parts.workers.find((w) => w.worker.status().camera === id);
      if (worker) camera.add({ id: 'capture', restart: 'transient', service: worker.worker });
      const uploads = this.supervisor(`cameras/camera:${id}/uploads`, `uploads:${id}`, supervision.variants);
      for (const u of parts.uploaders.filter((x) => x.camera === id)) {
        uploads.add({ id: u.variant, restart: 'permanent', service: parts.uploaderService?.(u) ?? u });
      }
      camera.add({ id: 'uploads', restart: 'permanent', service: uploads });
      cameras.add({ id: `camera:${id}`, restart: 'permanent', service: camera });
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
    return this.#workers.map(({ worker, name, intervalMs, captureTimeoutMs }) => {
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
