// The reboot the Updater asks for, through the firmware's command (docs/firmware.md,
// "Rebooting into a trial"): `vigil-reboot` for an ordinary reboot, `vigil-reboot tryboot` for
// the Pi firmware's one-shot trial of the other slot. The command only starts the reboot: init
// then stops everything, the agent with SIGTERM, so it returns within seconds.
import { execFile } from 'node:child_process';
import { VigilError } from '../lib/errors.js';

export const REBOOT_COMMAND_TIMEOUT_MS = 30_000;

export function rebootWith(command: readonly string[]): (tryboot: boolean) => Promise<void> {
  const [file, ...args] = command;
  if (!file) throw new Error('empty reboot command');
  return (tryboot) =>
    new Promise((resolve, reject) => {
      const argv = tryboot ? [...args, 'tryboot'] : args;
      execFile(file, argv, { timeout: REBOOT_COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, _stdout, stderr) => {
        if (!err) return resolve();
        const why = stderr.trim().split('\n').slice(-3).join(' | ') || err.message;
        reject(new VigilError('REBOOT_FAILED', `${[file, ...argv].join(' ')}: ${why}`, { cause: err }));
      });
    });
}
