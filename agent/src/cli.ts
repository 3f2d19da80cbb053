#!/usr/bin/env node
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClaimResponse } from '@vigil/protocol';
import { loadConfig, ConfigError, type AgentConfig } from './config.js';
import { Agent, openParts } from './agent.js';
import { installCrashHandlers } from './health/run-state.js';
import { LogRing } from './lib/log-ring.js';
import { CameraRegistry } from './cameras/camera-registry.js';
import { CloudClient } from './cloud/cloud-client.js';
import { scaledClock, systemClock } from './lib/clock.js';
import { createLogger, silentLogger } from './lib/logger.js';
import { onStopSignals } from './lib/stop-signals.js';
import { errorCode } from './lib/errors.js';
import { CameraCredentialStore, credentialScope, DEFAULT_SCOPE, loadCredentialsKey } from './cameras/credentials.js';
import { readUpdateState } from './update/updater.js';
import { doctorFramesDir, runDoctor } from './doctor/doctor.js';
import { exitCode, formatText } from './doctor/findings.js';

const USAGE = `usage: vigil-agent [command] [--config FILE]

commands:
  run                  capture and upload until stopped (default)
  claim --code CODE    exchange a one-time claim code for this device's token
  set-token            store a device token read from standard input
  status               queue depth, dead letters, counters, cameras, the latest update (JSON)
  doctor [--frames DIR] [--json]
                       is the site working? cameras, a fresh frame from each (saved in DIR,
                       default <dataDir>/doctor), cloud, token, clock, queue, firmware, disk;
                       one line per check (OK/WARN/FAIL/SKIP). Exit 0: all well, 1: a check failed
  camera-credentials [--camera KEY|MAC] --username U
                       store ONVIF camera credentials, the password read from standard input:
                       the site default, or one camera's (by its key or MAC); encrypted at rest
  camera-credentials --list | [--camera KEY|MAC] --remove

Configuration: a JSON file (--config or VIGIL_CONFIG) and VIGIL_* environment variables.
Exit codes: 2 for a bad command line, 78 for an invalid configuration.`;

/** A command line we cannot run (unknown command or option). */
const EXIT_USAGE = 2;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        code: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        camera: { type: 'string' },
        username: { type: 'string' },
        list: { type: 'boolean' },
        remove: { type: 'boolean' },
        frames: { type: 'string' },
        json: { type: 'boolean' },
      },
    });
  } catch (err) {
    if (!String(errorCode(err)).startsWith('ERR_PARSE_ARGS')) throw err;
    console.error(`${(err as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  const { positionals, values } = args;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const command = positionals[0] ?? 'run';
  const config = loadConfig({ file: values.config });
  switch (command) {
    case 'run':
      return run(config);
    case 'claim':
      if (!values.code) throw new ConfigError('claim needs --code CODE');
      return claim(config, values.code);
    case 'set-token':
      return setToken(config);
    case 'status':
      return status(config);
    case 'camera-credentials':
      return cameraCredentials(config, values);
    case 'doctor':
      return doctor(config, values);
    default:
      console.error(`unknown command "${command}"\n${USAGE}`);
      return EXIT_USAGE;
  }
}

async function run(config: AgentConfig): Promise<number> {
  const ring = new LogRing();
  const log = createLogger(undefined, ring);
  const clock = config.clockScale > 1 ? scaledClock(config.clockScale) : systemClock;
  const stop = new AbortController();
  // Installed first: a signal during start-up is a graceful stop too.
  const removeSignals = onStopSignals(stop, { log, deadlineMs: config.shutdownTimeoutMs });
  const parts = await openParts(config);
  const agent = new Agent(config, parts, clock, log, { ring });
  const removeCrashHandlers = installCrashHandlers(agent.runState, log);
  let exit;
  try {
    exit = await agent.run(stop.signal);
  } catch (err) {
    // A failure the tree did not catch (start-up): recorded like any crash, init restarts us.
    agent.runState.markCrash(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    throw err;
  }
  agent.close();
  removeCrashHandlers();
  removeSignals();
  return exit.code;
}

async function claim(config: AgentConfig, code: string): Promise<number> {
  const parts = await openParts(config);
  const client = new CloudClient({ baseUrl: config.cloudUrl, token: () => undefined });
  try {
    const res = await client.call<ClaimResponse>('POST', '/v1/claim', { code, hardwareId: parts.hardwareId, name: config.deviceName }, { auth: false });
    parts.vault.save(res.token, Date.now());
    console.log(`claimed: device ${res.deviceId} at site "${res.site}"`);
    return 0;
  } finally {
    await client.close();
    parts.db.close();
  }
}

async function setToken(config: AgentConfig): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const token = Buffer.concat(chunks).toString('utf8').trim();
  if (!token) throw new ConfigError('set-token: no token on standard input');
  const parts = await openParts(config);
  parts.vault.save(token, Date.now());
  parts.db.close();
  console.log('token stored');
  return 0;
}

async function status(config: AgentConfig): Promise<number> {
  const parts = await openParts(config);
  const out = {
    queue: parts.queue.depth(),
    deadLetters: parts.queue.deadLetterCount(),
    spoolBytes: parts.queue.spoolBytes(),
    counters: parts.counters.all(),
    hasToken: parts.vault.load() !== undefined,
    // The latest firmware update and where it stands (null: none yet)
    update: readUpdateState(parts.kv),
    // Every camera the registry knows, with its problem (a wrong password, not found)
    cameras: new CameraRegistry({ db: parts.db, clock: systemClock, log: silentLogger() }).list().map((c) => ({
      camera: c.key,
      name: c.name,
      source: c.source,
      address: c.address,
      present: c.present,
      lastError: c.lastError ? `${c.lastError.code}: ${c.lastError.message}` : null,
    })),
  };
  parts.db.close();
  console.log(JSON.stringify(out, null, 2));
  return 0;
}

async function doctor(config: AgentConfig, o: { frames?: string | undefined; json?: boolean | undefined }): Promise<number> {
  // Ctrl-C stops the captures (ffmpeg runs in its own process group and would outlive us) and
  // still prints what was found; a second one exits at once.
  const stop = new AbortController();
  const removeSignals = onStopSignals(stop, { log: silentLogger(), deadlineMs: config.shutdownTimeoutMs });
  const parts = await openParts(config);
  try {
    const report = await runDoctor(config, parts, { framesDir: resolve(o.frames ?? doctorFramesDir(config)), signal: stop.signal });
    // --json: one line, for scripts and jq
    console.log(o.json ? JSON.stringify(report) : formatText(report));
    return exitCode(report);
  } finally {
    parts.db.close();
    removeSignals();
  }
}

async function cameraCredentials(config: AgentConfig, o: { camera?: string | undefined; username?: string | undefined; list?: boolean | undefined; remove?: boolean | undefined }): Promise<number> {
  let scope: string;
  try {
    scope = credentialScope(o.camera);
  } catch (err) {
    throw new ConfigError(`camera-credentials --camera: ${(err as Error).message}`);
  }
  if (!o.list && !o.remove && !o.username) throw new ConfigError('camera-credentials needs --username U (the password on standard input), --list or --remove');
  let password = '';
  if (!o.list && !o.remove) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    // One trailing line break is the shell's, not the password's; spaces may be the password's.
    password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (!password) throw new ConfigError('camera-credentials: no password on standard input');
  }
  const parts = await openParts(config);
  try {
    const store = new CameraCredentialStore(parts.kv, await loadCredentialsKey(config));
    if (o.list) {
      console.log(JSON.stringify(store.list(), null, 2));
      return 0;
    }
    const who = scope === DEFAULT_SCOPE ? 'the site default (every camera without its own)' : `camera ${scope}`;
    if (o.remove) {
      const removed = store.remove(o.camera, Date.now());
      console.log(removed ? `credentials removed for ${who}` : `no credentials stored for ${who}`);
      return removed ? 0 : 1;
    }
    store.set(o.camera, { username: o.username!, password }, Date.now());
    console.log(`credentials stored for ${who}; a running agent uses them at its next discovery round`);
    return 0;
  } finally {
    parts.db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(err instanceof ConfigError ? 78 : 1);
  },
);
