// The reboot the Updater asks for, through the firmware's command (docs/firmware.md,
// "Rebooting into a trial"): `vigil-reboot` for an ordinary reboot, `vigil-reboot tryboot` for
// the Pi firmware's one-shot trial of the other slot. The command only starts the reboot: init
// then stops everything, the agent with SIGTERM, so it returns within seconds.
import { VigilError } from '../lib/errors.js';
import { runCommand } from '../lib/run-command.js';

export const REBOOT_COMMAND_TIMEOUT_MS = 30_000;

export function rebootWith(command: readonly string[]): (tryboot: boolean) => Promise<void> {
  const [file, ...args] = command;
  if (!file) throw new Error('empty reboot command');
  return async (tryboot) => {
    try {
      await runCommand(file, tryboot ? [...args, 'tryboot'] : args, REBOOT_COMMAND_TIMEOUT_MS);
    } catch (err) {
      throw new VigilError('REBOOT_FAILED', (err as Error).message, { cause: err });
    }
  };
}
