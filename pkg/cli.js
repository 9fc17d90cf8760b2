#!/usr/bin/env node
// scepkit CLI: caps, cacert, enroll, inspect. Exit codes: 0 success, 1 refused/failed, 2 usage error.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as scep from './entry/node.js';

const USAGE = `usage:
  scepkit caps URL
  scepkit cacert URL [--out FILE] [--fingerprint HEX]
  scepkit enroll --url URL --challenge CODE --subject "CN=..." [--san dns:x ...] [--key-bits N]
                 [--fingerprint HEX] [--digest sha256] [--cipher aes-128-cbc] [--legacy] --out DIR
  scepkit enroll --profile FILE [--var USERNAME=alice ...] [--url URL] [--challenge CODE] --out DIR
                 (a SCEP profile object, as the admin API stores it with its secrets: the fixed challenge, or a
                 one-time password fetched from the dynamic challenge's otp_server_url with its username/password)
  scepkit renew --url URL --cert FILE --key FILE [--challenge CODE] [--key-bits N] [--fingerprint HEX] --out DIR
  scepkit inspect FILE [--key FILE]`;

class Usage extends Error {}

const commands = {
  async caps(positionals) {
    const url = need(positionals[0], 'URL');
    const caps = await scep.getCaCaps(url);
    const negotiated = tryNegotiate(caps.text);
    print({ capabilities: caps.capabilities, unknown: caps.unknown, negotiated });
  },

  async cacert(positionals, values) {
    const url = need(positionals[0], 'URL');
    const ca = await scep.getCaCert(url);
    if (values.fingerprint) scep.checkFingerprint(ca.body, values.fingerprint);
    if (values.out) {
      writeFileSync(values.out, ca.all.map((c) => scep.certificateToPem(c)).join(''));
    }
    print({ contentType: ca.contentType, caSubject: ca.caSubject, caFingerprint: ca.caFingerprint, certificates: ca.all.map((c) => scep.inspect(c)), written: values.out ?? null });
  },

  async enroll(_, values) {
    const out = need(values.out, '--out DIR');
    if (values.profile) {
      const result = await scep.enroll({
        profile: readProfile(values.profile),
        vars: readVars(values.var ?? []),
        url: values.url,
        challenge: values.challenge,
        cipher: values.cipher,
        onProgress: progress,
      });
      return writeResult(out, result);
    }
    if (values.var) throw new Usage('--var only goes with --profile');
    const result = await scep.enroll({
      url: need(values.url, '--url'),
      challenge: values.challenge,
      subject: need(values.subject, '--subject'),
      sans: values.san ?? [],
      keyBits: values['key-bits'] ? Number(values['key-bits']) : 2048,
      fingerprint: values.fingerprint,
      digest: values.digest,
      cipher: values.cipher,
      legacy: values.legacy,
      onProgress: progress,
    });
    writeResult(out, result);
  },

  async renew(_, values) {
    const out = need(values.out, '--out DIR');
    const result = await scep.renew({
      url: need(values.url, '--url'),
      certificate: readFileSync(need(values.cert, '--cert FILE')),
      privateKey: readFileSync(need(values.key, '--key FILE')),
      challenge: values.challenge,
      keyBits: values['key-bits'] ? Number(values['key-bits']) : 2048,
      fingerprint: values.fingerprint,
      legacy: values.legacy,
      onProgress: progress,
    });
    writeResult(out, result);
  },

  async inspect(positionals, values) {
    const file = need(positionals[0], 'FILE');
    const key = values.key ? scep.privateKeyToDer(readFileSync(values.key)) : undefined;
    print(scep.inspect(readFileSync(file), key));
  },
};

function readProfile(file) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Usage(`--profile ${file}: ${e.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Usage(`--profile ${file} is not JSON: ${e.message}`);
  }
}

/** `--var NAME=value`, each once. */
function readVars(pairs) {
  const vars = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1) throw new Usage(`--var ${pair}: write it NAME=value`);
    const name = pair.slice(0, at);
    if (name in vars) throw new Usage(`--var ${name} is given twice`);
    vars[name] = pair.slice(at + 1);
  }
  return vars;
}

function writeResult(out, result) {
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'key.pem'), result.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(out, 'cert.pem'), result.certificatePem);
  writeFileSync(join(out, 'chain.pem'), result.chainPem);
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

function need(value, what) {
  if (value === undefined || value === '') throw new Usage(`missing ${what}`);
  return value;
}

function print(value) {
  process.stdout.write(JSON.stringify(value, (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v), 2) + '\n');
}

async function main(argv) {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || !commands[command]) {
    process.stderr.write(USAGE + '\n');
    return command === '--help' || command === '-h' ? 0 : 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        url: { type: 'string' }, challenge: { type: 'string' }, subject: { type: 'string' },
        san: { type: 'string', multiple: true }, 'key-bits': { type: 'string' }, fingerprint: { type: 'string' },
        digest: { type: 'string' }, cipher: { type: 'string' }, legacy: { type: 'boolean', default: false },
        out: { type: 'string' }, key: { type: 'string' }, cert: { type: 'string' },
        profile: { type: 'string' }, var: { type: 'string', multiple: true },
      },
    });
  } catch (e) {
    process.stderr.write(`scepkit: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  try {
    await commands[command](parsed.positionals, parsed.values);
    return 0;
  } catch (e) {
    if (e instanceof Usage) {
      process.stderr.write(`scepkit: ${e.message}\n${USAGE}\n`);
      return 2;
    }
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
