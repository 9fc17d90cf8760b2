// The CLI as people expect it (scepclient, openssl, step): --version, --help per command, every argument problem
// reported at once before any key is made or anything sent, files kept unless --force, the code from a file or
// standard input. Nothing here reaches a network: a run that did would fail later, with exit 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = new URL('../cli.js', import.meta.url).pathname;
const cli = (args, input) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input, timeout: 30_000 });
const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
// Nobody listens on port 9 of loopback: an argument problem must be said before any attempt to reach it.
const NOBODY = 'http://127.0.0.1:9/scep';

test('--version prints the package version', () => {
  for (const flag of ['--version', '-V']) {
    const r = cli([flag]);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `scepkit ${VERSION}\n`);
  }
});

test('each command --help describes every option it takes, and exits 0', () => {
  const expected = {
    caps: [],
    cacert: ['--out', '--fingerprint', '--force'],
    enroll: ['--url', '--challenge', '--challenge-file', '--subject', '--san', '--key-bits', '--fingerprint', '--digest', '--cipher', '--legacy', '--out', '--force', '--profile', '--var'],
    renew: ['--url', '--cert', '--key', '--challenge', '--challenge-file', '--key-bits', '--fingerprint', '--legacy', '--out', '--force'],
    inspect: ['--key'],
  };
  for (const [command, flags] of Object.entries(expected)) {
    for (const args of [[command, '--help'], [command, '-h'], ['help', command]]) {
      const r = cli(args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: scepkit ${command}`, 'm'));
      for (const flag of [...flags, '--help']) assert.match(r.stdout, new RegExp(`^  (-h, )?${flag}\\b.{3,}`, 'm'), `${command} --help describes ${flag}`);
    }
  }
  const top = cli(['--help']);
  assert.equal(top.status, 0);
  for (const command of Object.keys(expected)) assert.match(top.stdout, new RegExp(`^  ${command} `, 'm'));
});

test('every argument problem is reported at once, with exit 2, before any key or request', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scepkit-cli-'));
  const r = cli(['enroll', '--url', 'ftp://x', '--subject', 'nonsense', '--key-bits', 'abc', '--digest', 'md5', '--fingerprint', '12', '--bogus', '--out', join(dir, 'o')]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^scepkit enroll: 6 problems with the arguments \(nothing was done\):$/m);
  for (const said of [/--bogus is not an option of enroll/, /--key-bits abc: a whole number/, /--url: .*"ftp:\/\/x" is not an http\(s\) URL/, /--subject: "nonsense" is not an RFC 4514 name/, /--digest: .*md5/, /--fingerprint: must be 64 \(SHA-256\) or 40/]) {
    assert.match(r.stderr, said);
  }
  assert.doesNotMatch(r.stderr, /scepkit: key|caps|cacert/, 'no step started');
  const sizes = cli(['enroll', '--url', NOBODY, '--challenge', 'c', '--subject', 'CN=x', '--key-bits', '1024', '--out', join(dir, 'o')]);
  assert.equal(sizes.status, 2);
  assert.match(sizes.stderr, /--key-bits: .*RSA 1024 is only accepted/);
  const missing = cli(['renew', '--url', NOBODY]);
  assert.equal(missing.status, 2);
  for (const said of [/missing --out DIR/, /missing --cert FILE/, /missing --key FILE/]) assert.match(missing.stderr, said);
  const both = cli(['enroll', '--url', NOBODY, '--subject', 'CN=x', '--challenge', 'a', '--challenge-file', '-', '--var', 'X=1', '--out', join(dir, 'o')], '');
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--challenge and --challenge-file: give one of them/);
  assert.match(both.stderr, /--var only goes with --profile/);
  assert.equal(cli(['caps']).status, 2);
  assert.match(cli(['inspect', join(dir, 'nothing.der')]).stderr, /FILE .*nothing\.der: no such file/);
});

test('files that exist are kept unless --force; the code comes from a file or standard input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scepkit-cli-'));
  writeFileSync(join(dir, 'key.pem'), 'mine');
  const base = ['enroll', '--url', NOBODY, '--subject', 'CN=x', '--out', dir];
  const kept = cli([...base, '--challenge', 'c']);
  assert.equal(kept.status, 2);
  assert.match(kept.stderr, /key\.pem exists: use --force to overwrite/);
  assert.equal(readFileSync(join(dir, 'key.pem'), 'utf8'), 'mine');
  // With --force, and the code from standard input, the arguments pass: it goes on to the server (nobody there).
  const forced = cli([...base, '--force', '--challenge-file', '-'], 'ABCDE-FGHIJ\n');
  assert.equal(forced.status, 1, forced.stderr);
  assert.match(forced.stderr, /Could not reach the SCEP server at http:\/\/127\.0\.0\.1:9/);
  const empty = cli([...base, '--force', '--challenge-file', '-'], '\n');
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /--challenge-file - is empty/);
  writeFileSync(join(dir, 'code.txt'), 'ABCDE-FGHIJ\n');
  const fromFile = cli([...base, '--force', '--challenge-file', join(dir, 'code.txt')]);
  assert.equal(fromFile.status, 1, 'the arguments pass; the server is not there');
  assert.equal(readFileSync(join(dir, 'key.pem'), 'utf8'), 'mine', 'nothing is written without a certificate');
});
