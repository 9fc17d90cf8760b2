#!/usr/bin/env node
// scepkit CLI: caps, cacert, enroll, renew, inspect. Exit codes: 0 success, 1 refused/failed, 2 usage error.
// Every argument is checked before anything happens (no key is made, nothing is sent, no file written) and
// every problem is reported at once; the core checks what it owns (URL, subject, key size, algorithms).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as scep from './entry/node.js';

const VERSION = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')).version;

// The options every command may take, with what `--help` says of them.
const OPTION = {
  url: { type: 'string', arg: 'URL', help: "the SCEP server's URL (http or https), e.g. https://ca.example/scep" },
  challenge: { type: 'string', arg: 'CODE', help: 'the challenge password (enrollment code); it lands in shell history: prefer --challenge-file' },
  'challenge-file': { type: 'string', arg: 'FILE', help: "read the challenge from FILE ('-' for standard input; one trailing newline is dropped)" },
  subject: { type: 'string', arg: 'DN', help: 'the subject to ask for, RFC 4514, e.g. "CN=laptop-42,O=Example"' },
  san: { type: 'string', multiple: true, arg: 'TYPE:VALUE', help: 'a subjectAltName to ask for: dns:, email:, uri: or ip: (repeatable)' },
  'key-bits': { type: 'string', arg: 'N', help: 'RSA key size of the new key: 2048 (default), 3072, 4096 (1024 with --legacy)' },
  fingerprint: { type: 'string', arg: 'HEX', help: "the CA certificate's SHA-256 (or SHA-1) fingerprint: nothing is sent unless GetCACert matches" },
  digest: { type: 'string', arg: 'NAME', help: 'pin the digest: sha256, sha384, sha512 (sha1 with --legacy); default: the strongest the server offers' },
  cipher: { type: 'string', arg: 'NAME', help: 'pin the cipher: aes-128-cbc, aes-192-cbc, aes-256-cbc (des-ede3-cbc with --legacy)' },
  legacy: { type: 'boolean', help: 'allow 3DES, SHA-1 and RSA 1024, and read single-DES replies (old servers such as micromdm)' },
  out: { type: 'string', arg: 'DIR', help: 'where to write key.pem (mode 600), cert.pem and chain.pem' },
  force: { type: 'boolean', help: 'overwrite files that exist already (else nothing is done)' },
  profile: { type: 'string', arg: 'FILE', help: 'a SCEP profile object (JSON, as the admin API stores it, with its secrets) to enroll from' },
  var: { type: 'string', multiple: true, arg: 'NAME=VALUE', help: "a template variable of --profile, e.g. USERNAME=alice (repeatable)" },
  cert: { type: 'string', arg: 'FILE', help: 'the current certificate (PEM or DER)' },
  key: { type: 'string', arg: 'FILE', help: 'the private key (PKCS#8 or PKCS#1, PEM or DER)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

const COMMANDS = {
  caps: {
    summary: "Show the server's capabilities (GetCACaps) and what scepkit would negotiate.",
    usage: 'scepkit caps URL',
    positionals: ['URL'],
    options: [],
  },
  cacert: {
    summary: "Fetch the CA's certificates (GetCACert), optionally check the pinned fingerprint and save them.",
    usage: 'scepkit cacert URL [--out FILE] [--fingerprint HEX] [--force]',
    positionals: ['URL'],
    options: ['out', 'fingerprint', 'force'],
    outHelp: 'write every certificate to FILE, PEM',
  },
  enroll: {
    summary: 'Make a key and enroll it: the CSR with the challenge, PKCSReq, polling while PENDING, the certificate.',
    usage:
      'scepkit enroll --url URL (--challenge CODE | --challenge-file FILE) --subject DN [--san TYPE:VALUE ...] [--key-bits N]\n' +
      '               [--fingerprint HEX] [--digest NAME] [--cipher NAME] [--legacy] --out DIR [--force]\n' +
      '       scepkit enroll --profile FILE [--var NAME=VALUE ...] [--url URL] [--challenge CODE | --challenge-file FILE] --out DIR',
    positionals: [],
    options: ['url', 'challenge', 'challenge-file', 'subject', 'san', 'key-bits', 'fingerprint', 'digest', 'cipher', 'legacy', 'out', 'force', 'profile', 'var'],
  },
  renew: {
    summary: 'Renew with the current certificate and key: a RenewalReq (PKCSReq where the server lacks Renewal) for a new key.',
    usage: 'scepkit renew --url URL --cert FILE --key FILE [--challenge CODE | --challenge-file FILE] [--key-bits N] [--fingerprint HEX]\n              [--legacy] --out DIR [--force]',
    positionals: [],
    options: ['url', 'cert', 'key', 'challenge', 'challenge-file', 'key-bits', 'fingerprint', 'legacy', 'out', 'force'],
  },
  inspect: {
    summary: 'Explain a certificate, CSR, PKCS#7/PKIMessage or PKCS#12 (PEM or DER); with --key, decrypt a PKIMessage.',
    usage: 'scepkit inspect FILE [--key FILE]',
    positionals: ['FILE'],
    options: ['key'],
    keyHelp: 'the key of the PKIMessage\'s recipient, to open its envelope',
  },
};

const USAGE = `usage: scepkit <command> [options]    (scepkit <command> --help for every option)

commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`).join('\n')}

  scepkit --version`;

/** What `scepkit <command> --help` prints: its usage and every option it takes. */
function commandHelp(name) {
  const c = COMMANDS[name];
  const lines = [...c.options, 'help'].map((o) => {
    const spec = OPTION[o];
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${o}${spec.arg ? ` ${spec.arg}` : ''}`;
    return `  ${flag.padEnd(26)} ${c[`${o}Help`] ?? spec.help}`;
  });
  return `${c.summary}\n\nusage: ${c.usage}\n\noptions:\n${lines.join('\n')}`;
}

/** A command's arguments, checked: every problem, or what to run with. */
async function read(name, args) {
  const c = COMMANDS[name];
  const problems = [];
  const options = Object.fromEntries([...c.options, 'help'].map((o) => {
    const { type, multiple, short } = OPTION[o];
    return [o, { type, ...(multiple ? { multiple } : {}), ...(short ? { short } : {}) }];
  }));
  let parsed;
  try {
    // Not strict: an unknown option or a missing value is one problem among the others, not the first and only.
    parsed = parseArgs({ args, options, allowPositionals: true, strict: false });
  } catch (e) {
    return { problems: [e.message] };
  }
  const values = parsed.values;
  if (values.help) return { help: true };
  for (const [key, value] of Object.entries(values)) {
    if (!(key in options)) problems.push(`--${key} is not an option of ${name}`);
    else if (options[key].type === 'string' && [value].flat().some((v) => typeof v !== 'string')) problems.push(`--${key} needs a value (${OPTION[key].arg})`);
  }
  const positionals = parsed.positionals;
  c.positionals.forEach((p, i) => positionals[i] === undefined && problems.push(`missing ${p}`));
  if (positionals.length > c.positionals.length) problems.push(`unexpected ${positionals.slice(c.positionals.length).join(' ')}`);
  const given = (o) => typeof values[o] === 'string';
  const fileOf = (flag, path) => {
    try {
      return readFileSync(path);
    } catch (e) {
      problems.push(`--${flag} ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
      return undefined;
    }
  };

  let challenge = values.challenge;
  if (given('challenge') && given('challenge-file')) problems.push('--challenge and --challenge-file: give one of them');
  else if (given('challenge-file')) {
    const path = values['challenge-file'];
    const bytes = path === '-' ? readStdin(problems) : fileOf('challenge-file', path);
    if (bytes) {
      challenge = bytes.toString('utf8').replace(/\r?\n$/, '');
      if (!challenge) problems.push(`--challenge-file ${path} is empty`);
    }
  }
  let keyBits;
  if (given('key-bits')) {
    keyBits = /^\d+$/.test(values['key-bits']) ? Number(values['key-bits']) : undefined;
    if (keyBits === undefined) problems.push(`--key-bits ${values['key-bits']}: a whole number of bits, e.g. 2048`);
  }
  const run = { positionals, values, challenge, keyBits };

  // The files it would write: none may exist already unless --force.
  const outputs = name === 'cacert' ? (given('out') ? [values.out] : []) : given('out') ? ['key.pem', 'cert.pem', 'chain.pem'].map((f) => join(values.out, f)) : [];
  if (['enroll', 'renew'].includes(name) && !given('out')) problems.push('missing --out DIR');
  const existing = outputs.filter((f) => existsSync(f));
  if (existing.length && !values.force) problems.push(`${existing.join(', ')} exist${existing.length === 1 ? 's' : ''}: use --force to overwrite`);

  // What the core checks (URL, subject, key size, fingerprint, algorithms), named by the flags that gave it.
  let enrollment;
  if (name === 'enroll') {
    if (given('profile')) {
      const text = fileOf('profile', values.profile);
      let profile;
      try {
        profile = text && JSON.parse(text.toString('utf8'));
      } catch (e) {
        problems.push(`--profile ${values.profile} is not JSON: ${e.message}`);
      }
      for (const flag of ['subject', 'san', 'key-bits', 'fingerprint', 'digest', 'legacy']) if (values[flag] !== undefined) problems.push(`--${flag} comes from --profile; leave it out`);
      enrollment = profile && { profile, vars: readVars(values.var ?? [], problems), url: values.url, challenge, cipher: values.cipher };
    } else {
      if (values.var) problems.push('--var only goes with --profile');
      enrollment = { url: values.url, challenge, subject: values.subject, sans: values.san ?? [], keyBits: keyBits ?? 2048, fingerprint: values.fingerprint, digest: values.digest, cipher: values.cipher, legacy: values.legacy };
    }
  } else if (name === 'renew') {
    for (const flag of ['cert', 'key']) if (!given(flag)) problems.push(`missing --${flag} FILE`);
    run.certificate = given('cert') ? fileOf('cert', values.cert) : undefined;
    run.privateKey = given('key') ? fileOf('key', values.key) : undefined;
    let subject;
    try {
      subject = run.certificate && scep.inspect(run.certificate).subject;
    } catch (e) {
      problems.push(`--cert ${values.cert}: ${e.message}`);
    }
    // A renewal asks for the subject of the certificate it renews.
    enrollment = { url: values.url, challenge, subject: subject ?? 'CN=renewal', keyBits: keyBits ?? 2048, fingerprint: values.fingerprint, legacy: values.legacy };
  } else if (name === 'inspect') {
    if (positionals[0] !== undefined) run.file = fileOf('FILE', positionals[0]);
    if (given('key')) run.key = fileOf('key', values.key);
  } else if (name === 'cacert' && given('fingerprint') && !scep.normalizeFingerprint(values.fingerprint)) {
    problems.push('--fingerprint: must be 64 (SHA-256) or 40 (SHA-1) hex digits, colons allowed');
  }
  if (enrollment) {
    try {
      scep.checkEnrollOptions(enrollment);
    } catch (e) {
      if (!(e instanceof scep.ScepError)) throw e;
      const flags = { url: '--url', subject: '--subject', keyBits: '--key-bits', fingerprint: '--fingerprint', digest: '--digest', cipher: '--cipher', challenge: '--challenge', sans: '--san' };
      const issues = e.details?.length ? e.details : [{ path: '', rule: e.message }];
      for (const { path, rule } of issues) {
        // An option this command has no flag for was filled in by it (a renewal's subject): not the caller's.
        if (name === 'renew' && path === 'subject') continue;
        const flag = flags[path.replace(/\[\d+\]$/, '')];
        problems.push(flag ? `${flag}: ${rule}` : rule);
      }
    }
    run.enrollment = enrollment;
  }
  return problems.length ? { problems } : { run };
}

function readStdin(problems) {
  try {
    return readFileSync(0);
  } catch (e) {
    problems.push(`--challenge-file -: standard input cannot be read: ${e.message}`);
    return undefined;
  }
}

/** `--var NAME=value`, each once. */
function readVars(pairs, problems) {
  const vars = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1) problems.push(`--var ${pair}: write it NAME=value`);
    else if (pair.slice(0, at) in vars) problems.push(`--var ${pair.slice(0, at)} is given twice`);
    else vars[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return vars;
}

const commands = {
  async caps({ positionals }) {
    const caps = await scep.getCaCaps(positionals[0]);
    print({ capabilities: caps.capabilities, unknown: caps.unknown, negotiated: tryNegotiate(caps.text) });
  },

  async cacert({ positionals, values }) {
    const ca = await scep.getCaCert(positionals[0]);
    if (values.fingerprint) scep.checkFingerprint(ca.body, values.fingerprint);
    if (values.out) writeFileSync(values.out, ca.all.map((c) => scep.certificateToPem(c)).join(''), { flag: values.force ? 'w' : 'wx' });
    print({ contentType: ca.contentType, caSubject: ca.caSubject, caFingerprint: ca.caFingerprint, certificates: ca.all.map((c) => scep.inspect(c)), written: values.out ?? null });
  },

  async enroll({ values, enrollment }) {
    writeResult(values.out, values.force, await scep.enroll({ ...enrollment, onProgress: progress }));
  },

  async renew({ values, enrollment, certificate, privateKey }) {
    const { url, challenge, keyBits, fingerprint, legacy } = enrollment;
    writeResult(values.out, values.force, await scep.renew({ url, challenge, keyBits, fingerprint, legacy, certificate, privateKey, onProgress: progress }));
  },

  async inspect({ file, key }) {
    print(scep.inspect(file, key ? scep.privateKeyToDer(key) : undefined));
  },
};

function writeResult(out, force, result) {
  mkdirSync(out, { recursive: true });
  const flag = force ? 'w' : 'wx';
  writeFileSync(join(out, 'key.pem'), result.privateKeyPem, { mode: 0o600, flag });
  writeFileSync(join(out, 'cert.pem'), result.certificatePem, { flag });
  writeFileSync(join(out, 'chain.pem'), result.chainPem, { flag });
  const cert = scep.inspect(result.certificate);
  print({ issued: true, subject: cert.subject, issuer: cert.issuer, serial: cert.serial, notAfter: cert.notAfter, sha256Fingerprint: cert.sha256Fingerprint, transactionId: result.transactionId, out });
}

function tryNegotiate(text) {
  try {
    return scep.negotiate(text, false);
  } catch (e) {
    return { error: e.message };
  }
}

function progress(step, detail) {
  const tid = detail?.transactionId ? ` (transaction ${detail.transactionId})` : '';
  process.stderr.write(`scepkit: ${step}${tid}\n`);
}

function print(value) {
  process.stdout.write(JSON.stringify(value, (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v), 2) + '\n');
}

async function main(argv) {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-V') {
    process.stdout.write(`scepkit ${VERSION}\n`);
    return 0;
  }
  if (command === '--help' || command === '-h' || (command === 'help' && !rest.length)) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (command === 'help' && COMMANDS[rest[0]]) {
    process.stdout.write(commandHelp(rest[0]) + '\n');
    return 0;
  }
  if (!COMMANDS[command]) {
    process.stderr.write(`${command ? `scepkit: unknown command ${command}\n` : ''}${USAGE}\n`);
    return 2;
  }
  const { help, problems, run } = await read(command, rest);
  if (help) {
    process.stdout.write(commandHelp(command) + '\n');
    return 0;
  }
  if (problems) {
    const n = problems.length;
    process.stderr.write(`scepkit ${command}: ${n === 1 ? 'a problem' : `${n} problems`} with the arguments (nothing was done):\n${problems.map((p) => `  ${p}`).join('\n')}\nscepkit ${command} --help describes every option.\n`);
    return 2;
  }
  try {
    await commands[command](run);
    return 0;
  } catch (e) {
    if (e instanceof scep.ScepError && e.kind === 'refused') {
      process.stderr.write(`scepkit: the server refused the request\n  failInfo: ${e.failInfo} (${e.failInfoCode})\n  failInfoText: ${e.message}\n  resolution: ${e.resolution}\n  transaction: ${e.transactionId}\n`);
      return 1;
    }
    const extra = e.failInfo ? `\n  failInfo: ${e.failInfo}\n  resolution: ${e.resolution}` : '';
    process.stderr.write(`scepkit: ${e.message}${extra}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
