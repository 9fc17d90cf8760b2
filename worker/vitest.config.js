// Worker tests run inside workerd (the Workers runtime) with the real D1 binding and migrations applied,
// against a throwaway CA made here for the run.
import { createHmac, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
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
    ADMIN_TOKEN: 'test-admin-token', CODE_KEY: randomBytes(32).toString('hex'), CA_KEK: randomBytes(32).toString('hex'),
  };
}

/**
 * A webhook on loopback for test/webhook.test.js, as an operator's service would be: it checks the signature
 * (X-Scepkit-Signature over the raw body under WEBHOOK_SECRET, timestamp within 300 s) and answers by its path —
 * /allow, /deny (with a reason), /slow (after the timeout), /error (HTTP 500), /garbage; /wrong-secret checks with
 * another secret. GET /last?path= returns what the last request to a path carried.
 */
const WEBHOOK_SECRET = randomBytes(16).toString('hex');
const ACCESS_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 });
async function webhookServer() {
  const seen = new Map();
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    // Also a Cloudflare Access team for test/access.test.js: its JWKS.
    if (req.method === 'GET' && path === '/cdn-cgi/access/certs') {
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ keys: [{ ...ACCESS_KEY.publicKey.export({ format: 'jwk' }), kid: 'test-kid', alg: 'RS256', use: 'sig' }] }));
    }
    if (req.method === 'GET' && path === '/last') {
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify(seen.get(new URL(req.url, 'http://x').searchParams.get('path')) ?? null));
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.set(path, { body, signature: req.headers['x-scepkit-signature'] ?? null, contentType: req.headers['content-type'] });
      const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(req.headers['x-scepkit-signature'] ?? '') ?? [];
      const secret = path === '/wrong-secret' ? 'not-the-secret-of-the-profile' : WEBHOOK_SECRET;
      const expected = t && createHmac('sha256', secret).update(`${t}.${body}`).digest();
      const signed = expected && timingSafeEqual(expected, Buffer.from(v1, 'hex')) && Math.abs(Date.now() / 1000 - Number(t)) <= 300;
      const answer = (status, value) => {
        res.statusCode = status;
        res.setHeader('content-type', 'application/json');
        res.end(typeof value === 'string' ? value : JSON.stringify(value));
      };
      if (!signed) return answer(200, { allow: false, reason: 'bad signature' });
      if (path === '/allow') return answer(200, { allow: true });
      if (path === '/deny') return answer(200, { allow: false, reason: `seat ${JSON.parse(body).seat_id} is not compliant` });
      if (path === '/slow') return setTimeout(() => answer(200, { allow: true }), 1500);
      if (path === '/error') return answer(500, { allow: true });
      return answer(200, 'allow');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return `http://127.0.0.1:${server.address().port}`;
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
          WEBHOOK_TEST_URL: await webhookServer(),
          WEBHOOK_TEST_SECRET: WEBHOOK_SECRET,
          // The Access team's signing key, for test/access.test.js to sign JWTs with.
          ACCESS_TEST_KEY: ACCESS_KEY.privateKey.export({ type: 'pkcs8', format: 'pem' }),
        },
      },
    }),
  ],
  test: { setupFiles: ['./test/setup.js'], testTimeout: 60_000, hookTimeout: 60_000 },
}));
