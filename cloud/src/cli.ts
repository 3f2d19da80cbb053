#!/usr/bin/env node
import { runCli } from './cli-commands.js';

runCli(process.argv.slice(2), { out: (l) => console.log(l), err: (l) => console.error(l) }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as { code?: string; message?: string };
    console.error(`vigil-cloud: ${e.message ?? String(err)}`);
    // 2 = the command line or configuration is wrong; 1 = it failed.
    process.exitCode = e.code === 'CONFIG_INVALID' || e.code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  },
);
