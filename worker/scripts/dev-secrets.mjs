// Creates worker/.dev.vars on first run: a dev CA, an RA certified by it, the admin token, the key that
// enrollment codes are MACed with and the key the CA manager wraps CA keys under. Never committed (.gitignore), never in D1. ADMIN_TOKEN from the
// environment wins.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as scep from 'scepkit';

const file = new URL('../.dev.vars', import.meta.url);
const vars = existsSync(file) ? Object.fromEntries(readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), JSON.parse(l.slice(l.indexOf('=') + 1))])) : {};

function rsa() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }), der: new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' })) };
}

if (!vars.CA_KEY) {
  const now = Math.floor(Date.now() / 1000);
  const ca = rsa();
  const caCert = scep.selfSignedCertificate(ca.der, 'CN=scepkit dev CA,O=scepkit', now - 3600, now + 10 * 365 * 86400, 'sha256', 'ca');
  const ra = rsa();
  const raCert = scep.raCertificate(ra.der, 'CN=scepkit dev RA,O=scepkit', now - 3600, now + 2 * 365 * 86400, caCert, ca.der);
  Object.assign(vars, { CA_CERT: scep.certificateToPem(caCert), CA_KEY: ca.pem, RA_CERT: scep.certificateToPem(raCert), RA_KEY: ra.pem });
  console.error('dev-secrets: created a dev CA and RA in worker/.dev.vars');
}
vars.ADMIN_TOKEN = process.env.ADMIN_TOKEN || vars.ADMIN_TOKEN || randomBytes(24).toString('base64url');
vars.CODE_KEY ||= randomBytes(32).toString('hex');
// The key the CA manager wraps its CAs' private keys under (AES-256-GCM).
vars.CA_KEK ||= randomBytes(32).toString('hex');
writeFileSync(file, Object.entries(vars).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join('\n') + '\n', { mode: 0o600 });
