import { describe, expect, it } from 'vitest';
import { allowedServers } from '../src/page.js';
import { BASE, enrolledSeat, env, fetchWorker, requester } from './helpers.js';

// vitest.config.js sets PAGE_ALLOWED_SERVERS for this run: ' https://Scep.Example:443/ ,http://127.0.0.1:9, not-an-origin'.
const ALLOWED = ['https://scep.example', 'http://127.0.0.1:9'];

describe('response headers', () => {
  it('the admin API is nosniff and no-store, answers and errors alike', async () => {
    const responses = [
      await fetchWorker(`${BASE}/api/v1/seats`, { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } }),
      await fetchWorker(`${BASE}/api/v1/enrollments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ seat_id: 'nobody-at-all', profile: 'none' }),
      }),
      await fetchWorker(`${BASE}/api/v1/seats`),
      await fetchWorker(`${BASE}/api/v1/no-such-route`, { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } }),
      await fetchWorker(`${BASE}/api/v1/openapi.json`),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 404, 401, 404, 200]);
    for (const res of responses) {
      expect(res.headers.get('x-content-type-options'), res.url).toBe('nosniff');
      expect(res.headers.get('cache-control'), res.url).toBe('no-store');
    }
  });

  it('every SCEP answer is nosniff: capabilities, CA certificates, a CertRep, a refusal of bad input, a preflight', async () => {
    const s = await enrolledSeat();
    const r = await requester(s);
    const certRep = await fetchWorker(`${s.url}?operation=PKIOperation`, { method: 'POST', body: r.build(r.csr()).message });
    const responses = [
      await fetchWorker(`${s.url}?operation=GetCACaps`),
      await fetchWorker(`${BASE}/scep?operation=GetCACert`),
      certRep,
      await fetchWorker(`${s.url}?operation=PKIOperation`, { method: 'POST', body: 'not a PKIMessage' }),
      await fetchWorker(`${s.url}`, { method: 'OPTIONS', headers: { origin: 'https://page.example', 'access-control-request-method': 'POST' } }),
      await fetchWorker(`${BASE}/scep-profiles.json`),
      await fetchWorker(`${BASE}/crl`),
    ];
    expect(responses.map((res) => res.status)).toEqual([200, 200, 200, 400, 204, 200, 200]);
    expect(certRep.headers.get('content-type')).toBe('application/x-pki-message');
    for (const res of responses) expect(res.headers.get('x-content-type-options'), res.url).toBe('nosniff');
  });

  it('page-config.json lists exactly the allowed origins, normalised, for the page to read before it contacts any', async () => {
    const res = await fetchWorker(`${BASE}/page-config.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ allowed_servers: ALLOWED });
    expect(res.headers.get('access-control-allow-origin'), 'only the page beside it reads it').toBeNull();
  });

  it('an allowed server is an exact origin: paths, userinfo, other schemes and wildcards are left out', () => {
    const list = (value) => allowedServers({ PAGE_ALLOWED_SERVERS: value });
    expect(list(undefined)).toEqual([]);
    expect(list('')).toEqual([]);
    expect(list('HTTPS://SCEP.example:443, http://scep.example:8080/ ,https://[::1]:8443,https://bücher.example')).toEqual(['https://scep.example', 'http://scep.example:8080', 'https://[::1]:8443', 'https://xn--bcher-kva.example']);
    const refused = ['https://scep.example/scep', 'https://scep.example?x=1', 'https://scep.example#x', 'https://admin@scep.example', 'https://a:b@scep.example', 'ftp://scep.example', 'javascript:alert(1)', '//scep.example', 'scep.example', '*', 'https://*.example', 'https://a;b.example', 'https://a_b.example'];
    for (const entry of refused) expect(list(entry), entry).toEqual([]);
  });

  it('the page: its CSP allows self, wasm and the allowed servers only, with nosniff and no referrer', async () => {
    const res = await fetchWorker(`${BASE}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>Enroll a certificate');
    const csp = Object.fromEntries(res.headers.get('content-security-policy').split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
    expect(csp['default-src']).toEqual(["'self'"]);
    expect(csp['script-src']).toEqual(["'self'", "'wasm-unsafe-eval'", expect.stringMatching(/^'sha256-[A-Za-z0-9+/]{43}='$/)]);
    expect(csp['connect-src']).toEqual(["'self'", ...ALLOWED]);
    expect(csp['frame-ancestors']).toEqual(["'none'"]);
    expect(csp['form-action']).toEqual(["'none'"]);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('a 304 for the page carries the widened CSP too (a browser keeps the 304 headers with its cached copy)', async () => {
    const etag = (await fetchWorker(`${BASE}/`)).headers.get('etag');
    const res = await fetchWorker(`${BASE}/`, { headers: { 'if-none-match': etag } });
    expect(res.status).toBe(304);
    expect(res.headers.get('content-security-policy')).toContain(`connect-src 'self' ${ALLOWED.join(' ')};`);
  });

  it('the page\'s scripts and wasm carry the same policy from _headers (as the assets layer serves them)', async () => {
    for (const path of ['/app.js', '/scepkit/entry/browser.js', '/scepkit/wasm-client/scepkit_bg.wasm']) {
      // These never reach the Worker, and the test's SELF reaches only the Worker: asked of the assets binding.
      const res = await env.ASSETS.fetch(`${BASE}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-security-policy'), path).toMatch(/frame-ancestors 'none'/);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      await res.arrayBuffer();
    }
  });
});
