// The ONVIF camera simulator as a program:
//   node --experimental-strip-types --no-warnings tools/onvif-sim/main.ts [options]
// Prints exactly one line, "ready <device service xaddr>", once it listens (and WS-Discovery
// is up, when asked for). SIGTERM or SIGINT: Bye, then exit 0. Bad options: exit 2.
import { OptionError, parseArgs, USAGE } from './options.ts';
import { startOnvifSim } from './sim.ts';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const sim = await startOnvifSim(parseArgs(argv));
  const stop = (): void => {
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`ready ${sim.xaddr}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err instanceof OptionError ? err.message : (err.stack ?? err.message)}\n`);
  process.exit(err instanceof OptionError ? 2 : 1);
});
