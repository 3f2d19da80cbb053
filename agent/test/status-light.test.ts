import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findLed, lightState, StatusLight } from '../src/health/status-light.js';
import { silentLogger } from '../src/lib/logger.js';
import { tmpDir } from '../../test/helpers/tmp.js';

// The kernel's LED class is a test double here (a folder with the same files): a Pi's
// /sys/class/leds/ACT cannot exist on this machine. The kernel turns our writes into blinking.
async function fakeLed(t: Parameters<typeof tmpDir>[0]): Promise<string> {
  const dir = join(await tmpDir(t), 'ACT');
  mkdirSync(dir);
  writeFileSync(join(dir, 'trigger'), 'none timer heartbeat [mmc0] default-on\n');
  writeFileSync(join(dir, 'brightness'), '0\n');
  return dir;
}

const settings = (dir: string) =>
  Object.fromEntries(['trigger', 'brightness', 'delay_on', 'delay_off'].map((f) => [f, (() => { try { return readFileSync(join(dir, f), 'utf8'); } catch { return null; } })()]));

t.test('the state: setup without a token, starting before a health check, attention on any problem, else ok', async (t) => {
  const ok = { problems: [], cameras: [{ state: 'ok' }, { state: 'ok' }] };
  t.equal(lightState({ tokenValid: false, report: ok }), 'setup');
  t.equal(lightState({ tokenValid: true, report: null }), 'starting');
  t.equal(lightState({ tokenValid: true, report: ok }), 'ok');
  t.equal(lightState({ tokenValid: true, report: { problems: [], cameras: [{ state: 'ok' }, { state: 'failing' }] } }), 'attention', 'a failing camera');
  t.equal(lightState({ tokenValid: true, report: { problems: [{ check: 'upload' }], cameras: [] } }), 'attention', 'a health problem');
  t.equal(lightState({ tokenValid: true, report: { problems: [], cameras: [] } }), 'ok', 'no cameras yet is not a problem of the light');
});

t.test('each state writes its trigger settings, only on a change; close gives back the old trigger', async (t) => {
  const dir = await fakeLed(t);
  const light = new StatusLight(dir, silentLogger());
  light.show('starting');
  t.match(settings(dir), { trigger: 'none', brightness: '1' }, 'starting: solid on');
  light.show('setup');
  t.match(settings(dir), { trigger: 'timer', delay_on: '1000', delay_off: '1000' }, 'setup: slow blink');
  light.show('attention');
  t.match(settings(dir), { trigger: 'timer', delay_on: '100', delay_off: '100' }, 'attention: fast blink');
  light.show('ok');
  t.match(settings(dir), { trigger: 'heartbeat' }, 'ok: heartbeat');
  writeFileSync(join(dir, 'trigger'), 'changed by someone');
  light.show('ok');
  t.equal(settings(dir).trigger, 'changed by someone', 'the same state again writes nothing');
  light.close();
  t.equal(settings(dir).trigger, 'mmc0', 'the trigger from before the agent (SD card activity)');
});

t.test('an LED that cannot be written is left alone, without failing', async (t) => {
  const dir = await fakeLed(t);
  // A write that fails for any user, root included: the file is a directory
  mkdirSync(join(dir, 'delay_on'));
  const warnings: unknown[] = [];
  const log = silentLogger();
  log.warn = ((o: unknown) => void warnings.push(o)) as typeof log.warn;
  const light = new StatusLight(dir, log);
  light.show('setup');
  t.equal(light.state, undefined, 'no state shown');
  t.equal(warnings.length, 1, 'said once');
  light.show('attention');
  t.equal(warnings.length, 1, 'and not again');
  t.doesNotThrow(() => light.close());
});

t.test('which LED: the configured one, none when configured empty, else the first default present', async (t) => {
  const dir = await fakeLed(t);
  t.equal(findLed('/somewhere/led'), '/somewhere/led');
  t.equal(findLed(''), undefined, 'off');
  t.equal(findLed(undefined, ['/no/such/led', dir]), dir);
  t.equal(findLed(undefined, ['/no/such/led']), undefined, 'a board without one (QEMU, a laptop)');
});
