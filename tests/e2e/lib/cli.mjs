// Running the command-line client as a real process, for the CLI test
// files (cli, cli-vault): HOME and XDG_CONFIG_HOME inside the test's
// directory, a clean environment (the sanitizers' options pass through),
// every output scanned for secrets. And the checks those files make on
// what it printed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { BASTION_BIN } from './daemon.mjs';

/**
 * Run `bastion ARGS` for the file harness h.
 * opts.input: stdin (string or Buffer; stdin is closed either way);
 * opts.xdg: another config home (a directory name under h.dir);
 * opts.env: extra variables; opts.valueOut: stdout carries a secret value
 * on purpose (`show --value`), so it is not scanned for secrets.
 * Resolves {code, stdout, stderr, out} with out the raw stdout bytes.
 */
export function runCli(h, args, { input = '', xdg = 'xdg', env = {}, valueOut = false, timeoutMs = 90000 } = {}) {
  const base = {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    HOME: path.join(h.dir, 'home'),
    XDG_CONFIG_HOME: path.join(h.dir, xdg),
    NO_PROXY: '*',
  };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) {
    if (process.env[k]) base[k] = process.env[k];
  }
  return new Promise((resolve, reject) => {
    const child = execFile(BASTION_BIN, args,
      { env: { ...base, ...env }, timeout: timeoutMs, maxBuffer: 8 << 20, encoding: 'buffer' },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`bastion ${args.join(' ')}: ${err.message}\n${stderr}`));
          return;
        }
        const res = { code: err ? err.code : 0, out: stdout, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') };
        const what = `bastion ${args.slice(0, 2).join(' ')}`;
        if (!valueOut) h.secrets.scan(res.stdout, `stdout of ${what}`);
        h.secrets.scan(res.stderr, `stderr of ${what}`);
        resolve(res);
      });
    child.stdin.on('error', () => { /* the CLI may exit before reading */ });
    child.stdin.end(input);
  });
}

export function expectCode(res, code, what) {
  assert.equal(res.code, code, `${what}: exit ${res.code}, expected ${code}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`);
}

export function noTrailingSpaces(text, what) {
  for (const line of text.split('\n')) assert.ok(!/[ \t]$/.test(line), `${what}: trailing space in ${JSON.stringify(line)}`);
}

// A table's rows as arrays of cells (cells never contain two spaces here).
export function tableRows(text) {
  return text.trimEnd().split('\n').map((l) => l.split(/ {2,}/));
}
