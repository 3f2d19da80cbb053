import { execFile } from 'node:child_process';

/**
 * Runs a command with a hard timeout (SIGKILL); rejects with what it said about the failure:
 * a LastError line when there is one (RAUC's client prints the service's error so, on stdout),
 * else the last lines of its output, without RAUC's progress chatter ("rauc-Message: …").
 * The one way the agent runs a system command (RAUC, the reboot, the card's erase).
 */
export function runCommand(file: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const lines = [stdout, stderr]
        .join('\n')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.includes('rauc-Message'));
      const lastError = lines.filter((l) => l.startsWith('LastError:'));
      const said = (lastError.length > 0 ? lastError : lines.slice(-4)).join(' | ');
      reject(new Error(`${[file, ...args.slice(0, 1)].join(' ')}: ${said || err.message}`, { cause: err }));
    });
  });
}
