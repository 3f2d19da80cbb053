// Where the CLI gets a new password: VIGIL_USER_PASSWORD, else stdin — typed at a prompt that
// does not echo when stdin is a terminal (twice, to catch a typo), or the first line of piped
// input. Never a command-line argument, which other users of the machine can read in ps.
import { ConfigError } from '../errors.js';

export const PASSWORD_ENV = 'VIGIL_USER_PASSWORD';

export interface PasswordInput extends AsyncIterable<string | Buffer> {
  isTTY?: boolean;
  setRawMode?(raw: boolean): unknown;
  on(event: 'data', fn: (chunk: string | Buffer) => void): unknown;
  off(event: 'data', fn: (chunk: string | Buffer) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export async function readNewPassword(o: { env: NodeJS.ProcessEnv; input: PasswordInput; prompt: (text: string) => void }): Promise<string> {
  const fromEnv = o.env[PASSWORD_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (o.input.isTTY && o.input.setRawMode) {
    const first = await readHidden(o.input, o.prompt, 'New password: ');
    const second = await readHidden(o.input, o.prompt, 'Again: ');
    if (first !== second) throw new ConfigError('the two passwords differ; nothing changed');
    return first;
  }
  return readFirstLine(o.input);
}

async function readFirstLine(input: PasswordInput): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += chunk.toString();
    if (text.includes('\n')) break;
  }
  const line = text.split('\n')[0]!.replace(/\r$/, '');
  if (line === '') throw new ConfigError(`no password given: pipe it on stdin (one line) or set ${PASSWORD_ENV}`);
  return line;
}

/** One line typed at a terminal in raw mode, echoing nothing; Ctrl-C cancels. */
function readHidden(input: PasswordInput, prompt: (text: string) => void, question: string): Promise<string> {
  prompt(question);
  input.setRawMode!(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (err: Error | null) => {
      input.off('data', onData);
      input.setRawMode!(false);
      input.pause();
      prompt('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: string | Buffer) => {
      for (const c of chunk.toString()) {
        if (c === '\r' || c === '\n' || c === '\u0004') return finish(null);
        if (c === '\u0003') return finish(new ConfigError('cancelled; nothing changed'));
        if (c === '\u007f' || c === '\b') typed = [...typed].slice(0, -1).join('');
        else if (c >= ' ') typed += c;
      }
    };
    input.on('data', onData);
  });
}
