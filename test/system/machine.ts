// The QEMU harness as a whole machine with the Raspberry Pi firmware's memory: it powers the card
// on (board/qemu/run.sh reads autoboot.txt, config.txt, cmdline.txt as the firmware does) and,
// when the guest reboots (QEMU exits: -no-reboot), powers it on again. The one-shot tryboot flag
// is played here: the guest's vigil-reboot sets it through vcmailbox, whose test-image stand-in
// (board/qemu/rootfs-overlay/usr/bin/vcmailbox) prints VIGIL_FIRMWARE_REBOOT_FLAGS <flags> on the
// serial console; the next power-on boots autoboot.txt's [tryboot] partition and clears it, as the
// firmware does. A power cut (SIGKILL) loses the flag, as a Pi's does. docs/system-tests.md.
import { boot, waitOn, type BootOptions, type Guest } from './qemu.ts';
import type { Teardown } from '../helpers/tmp.ts';
import type { Disk } from './disk.ts';

/** Under TCG on 2 shared cores a reboot (rcK, QEMU exit, run.sh) takes a few seconds; room for load. */
export const REBOOT_TIMEOUT_MS = 120_000;

export interface Boot {
  /** 1 for the first power-on */
  n: number;
  guest: Guest;
  /** The firmware's view: autoboot.txt section and boot partition it used (run.sh's report) */
  section: 'all' | 'tryboot';
  partition: number;
  /** The kernel's root= (/dev/vda5 = slot a, /dev/vda6 = slot b) */
  root: string;
  /** How this boot ended: reboot (the guest asked), poweroff, cut (SIGKILL), reset (anything else: watchdog) */
  ended: Promise<'reboot' | 'poweroff' | 'cut' | 'reset' | 'stopped'>;
}

export interface Machine {
  /** Every boot so far, in order. */
  boots: Boot[];
  /** The boot running now (or the last one, once off). */
  current(): Boot;
  /** The tryboot flag the firmware holds for the next power-on. */
  trybootPending(): boolean;
  /** The boot after boot `n` (default: the current one), once the machine came back on its own. */
  nextBoot(n?: number, timeoutMs?: number): Promise<Boot>;
  /** Power cut: SIGKILL QEMU, then power on again; the tryboot flag is lost. */
  powerCut(): Promise<Boot>;
  /** Power on after an orderly power-off. */
  powerOn(): Promise<Boot>;
  /** Power off for good (SIGKILL), no further boots. */
  stop(): Promise<void>;
}

const FIRMWARE_LINE = /^run\.sh: firmware: boot partition (\d+) \((all|tryboot)\)/;
const CMDLINE_LINE = /^run\.sh: cmdline: .*\broot=(\S+)/;
const FLAGS_LINE = /^VIGIL_FIRMWARE_REBOOT_FLAGS (\d+)$/;
const RESTART_LINE = /reboot: Restarting system/;
const POWER_DOWN_LINE = /reboot: Power down/;

/** Powers the card on and keeps the machine running across reboots until `stop()` (or the test ends). */
export async function machine(t: Teardown, disk: Disk, opts: Omit<BootOptions, 'tryboot'> = {}): Promise<Machine> {
  const boots: Boot[] = [];
  let tryboot = false;
  let stopped = false;
  let cutting = false;
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of waiters) w();
  };

  const powerOn = async (): Promise<Boot> => {
    const n = boots.length + 1;
    // The firmware clears the one-shot flag as it starts
    const trial = tryboot;
    tryboot = false;
    const guest = boot(t, disk, { ...opts, tryboot: trial, name: `${opts.name ?? 'machine'}-${n}` });
    const fw = await guest.waitForLine(FIRMWARE_LINE, 30_000);
    const cmd = await guest.waitForLine(CMDLINE_LINE, 30_000);
    const [, part, section] = FIRMWARE_LINE.exec(fw.text)!;
    const ended = guest.exited.then(({ signal }) => {
      if (stopped) return 'stopped' as const;
      if (cutting || signal === 'SIGKILL') return 'cut' as const;
      if (guest.lines.some((l) => POWER_DOWN_LINE.test(l.text))) return 'poweroff' as const;
      if (guest.lines.some((l) => RESTART_LINE.test(l.text))) return 'reboot' as const;
      return 'reset' as const;
    });
    const b: Boot = { n, guest, section: section as 'all' | 'tryboot', partition: Number(part), root: CMDLINE_LINE.exec(cmd.text)![1]!, ended };
    // The guest asks the firmware for a tryboot: remembered until the next power-on
    let seen = 0;
    const watchFlags = (): void => {
      for (; seen < guest.lines.length; seen++) {
        const m = FLAGS_LINE.exec(guest.lines[seen]!.text);
        if (m) tryboot = (Number(m[1]) & 1) === 1;
      }
    };
    const timer = setInterval(watchFlags, 100);
    boots.push(b);
    notify();
    void ended.then(async (how) => {
      clearInterval(timer);
      watchFlags();
      // A reboot or reset comes back by itself (the flag honoured); a cut is powered on by powerCut()
      if (how === 'reboot' || how === 'reset') await powerOn();
      else notify();
    });
    return b;
  };

  t.teardown(async () => {
    stopped = true;
    const last = boots.at(-1);
    if (last) await last.guest.kill();
  });

  const first = await powerOn();
  void first;

  return {
    boots,
    current: () => boots.at(-1)!,
    trybootPending: () => tryboot,
    nextBoot(n = boots.length, timeoutMs = REBOOT_TIMEOUT_MS) {
      return waitOn(waiters, () => boots[n], timeoutMs, {
        timedOut: () => new Error(`no boot after boot ${n} within ${timeoutMs} ms; serial console:\n${boots[n - 1]?.guest.tail() ?? ''}`),
      });
    },
    async powerCut() {
      const last = boots.at(-1)!;
      cutting = true;
      await last.guest.kill();
      await last.ended;
      cutting = false;
      // On a Pi a power cut loses the firmware's reboot flags
      tryboot = false;
      return powerOn();
    },
    async powerOn() {
      const last = boots.at(-1)!;
      if ((await last.ended) !== 'poweroff') throw new Error(`boot ${last.n} did not power off`);
      return powerOn();
    },
    async stop() {
      stopped = true;
      await boots.at(-1)?.guest.kill();
    },
  };
}
