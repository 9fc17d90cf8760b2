// Worker tests run inside workerd (the Workers runtime) with the real D1 binding and migrations applied,
// against a throwaway CA made here for the run.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import * as scep from 'scepkit';

function testSecrets() {
  const rsa = () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }), der: new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' })) };
  };
  const now = Math.floor(Date.now() / 1000);
  const ca = rsa();
  const caCert = scep.selfSignedCertificate(ca.der, 'CN=scepkit test CA,O=scepkit', now - 3600, now + 3650 * 86400, 'sha256', 'ca');
  const ra = rsa();
  const raCert = scep.raCertificate(ra.der, 'CN=scepkit test RA,O=scepkit', now - 3600, now + 365 * 86400, caCert, ca.der);
  const next = rsa();
  const nextCa = scep.selfSignedCertificate(next.der, 'CN=scepkit next CA,O=scepkit', now - 3600, now + 7300 * 86400, 'sha256', 'ca');
  return {
    NEXT_CA_CERT: scep.certificateToPem(nextCa),
    CA_CERT: scep.certificateToPem(caCert), CA_KEY: ca.pem, RA_CERT: scep.certificateToPem(raCert), RA_KEY: ra.pem,
    ADMIN_TOKEN: 'test-admin-token', CODE_KEY: randomBytes(32).toString('hex'),
  };
}

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.jsonc' },
      miniflare: {
        bindings: {
          ...testSecrets(), TEST_MIGRATIONS: await readD1Migrations('./migrations'),
          // Other servers the page may contact, as an operator might write them (test/headers.test.js).
          PAGE_ALLOWED_SERVERS: ' https://Scep.Example:443/ ,http://127.0.0.1:9, not-an-origin',
        },
      },
    }),
  ],
  test: { setupFiles: ['./test/setup.js'], testTimeout: 60_000, hookTimeout: 60_000 },
}));
