// The escalation ladder with the real agent process, playing init (restart on exit) and the
// kernel (a new boot id after the reset): an agent over its memory limit restarts itself twice
// (exit 75), then stops feeding the watchdog stand-in so the board resets; the next boot says
// why it happened; once healthy again for the configured period, the ledger is cleared.
import t from 'tap';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestCloud } from '../helpers/cloud.js';
import { startAgentProcess, startedFields, writeAgentConfig, type AgentLogLine } from '../helpers/agent-process.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const EXIT_RESTART = 75;

t.test('restart, restart, reboot: counted across processes, reported after the boot, cleared when healthy', async (t) => {
  const cloud = await startTestCloud(t);
  const dataDir = await tmpDir(t);
  const bootId = join(dataDir, 'boot_id');
  const watchdog = join(dataDir, 'watchdog-standin');
  writeFileSync(bootId, 'boot-1\n');
  writeFileSync(watchdog, '');
  const base = {
    cloudUrl: cloud.url,
    claimCode: await cloud.claimCode('escalation'),
    heartbeatIntervalMs: 500,
    watchdog: { path: watchdog, intervalMs: 100 },
    system: { bootIdFile: bootId, clockStatusCommand: [] },
  };
  // Sick: any agent is over a 1 MiB memory limit.
  const sick = writeAgentConfig(dataDir, { ...base, health: { intervalMs: 300, maxRssBytes: 1024 ** 2, agentRestarts: 2 } });
  const isStep = (n: number) => (l: AgentLogLine) => l.msg === `escalation step ${n}`;

  for (const n of [1, 2]) {
    const agent = startAgentProcess(t, sick);
    const step = await agent.waitForLog(isStep(2), 30_000);
    t.match(step.reason, new RegExp(`resident memory \\d+ MB is over its 1 MB limit \\(restart ${n} of 2\\)`), `restart ${n}: the reason is recorded`);
    t.same((await agent.exited).code, EXIT_RESTART, `restart ${n}: the agent exits ${EXIT_RESTART} for init to start it again`);
    t.match(readFileSync(watchdog, 'utf8'), /^ok \d+/, `restart ${n}: the watchdog stays armed (not a planned stop)`);
  }

  const third = startAgentProcess(t, sick);
  const start = startedFields(await third.waitForLog((l) => l.msg === 'agent started'));
  t.equal(start.lastExit?.reason, 'restart', 'the agent knows it was restarted by its own escalation');
  t.match(start.lastExit?.detail, /over its 1 MB limit \(restart 2 of 2\)/);
  const reboot = await third.waitForLog(isStep(3), 30_000);
  t.match(reboot.reason, /over its 1 MB limit \(reboot 1\)/, 'two restarts did not help: reboot');
  await waitFor(() => readFileSync(watchdog, 'utf8').startsWith('reset'), 5_000, 'the stand-in to be told to reset');
  const fedAt = statSync(watchdog).mtimeMs;
  await new Promise((r) => setTimeout(r, 1_000));
  t.equal(statSync(watchdog).mtimeMs, fedAt, 'and no longer fed');
  t.match(readFileSync(watchdog, 'utf8'), /^reset .*over its 1 MB limit/);
  t.equal(third.child.exitCode, null, 'the agent keeps running (and capturing) until the board resets');
  await third.kill(); // the reset

  // The next boot, and healthy: the default limits, and a short healthy period.
  writeFileSync(bootId, 'boot-2\n');
  const healthy = writeAgentConfig(dataDir, { ...base, health: { intervalMs: 300, healthyResetMs: 1_500 } });
  const after = startAgentProcess(t, healthy);
  const started = startedFields(await after.waitForLog((l) => l.msg === 'agent started'));
  t.same(started.lastReboot.reason, 'watchdog', 'the boot after the reset is reported as a watchdog reboot');
  t.match(started.lastReboot.detail, /over its 1 MB limit/, 'with the reason the agent gave');
  t.equal(started.verdict.verdict, 'self_healed', 'the ledger survived the reboot');
  t.match(started.verdict.reason, /^step 3: /);
  await after.waitForLog((l) => l.msg === 'healthy for the whole period: escalation counters reset', 20_000);
  t.same((await after.stop()).code, 0, 'a planned stop exits 0');
  t.equal(readFileSync(watchdog, 'utf8').trim(), 'stopped', 'the planned stop disarms the keeper');

  const last = startAgentProcess(t, healthy);
  const final = startedFields(await last.waitForLog((l) => l.msg === 'agent started'));
  t.same(final.verdict, { verdict: 'nominal', reason: null }, 'cleared on disk after the healthy period');
  t.equal(final.lastExit?.reason, 'planned');
  t.same((await last.stop()).code, 0);
});
