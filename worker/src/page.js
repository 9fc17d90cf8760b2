// The enrollment page's side of the Worker: which SCEP servers besides this Worker the page may contact
// (PAGE_ALLOWED_SERVERS, comma-separated origins, default none), told to the page as page-config.json and to the
// browser as the page's CSP connect-src, so a link's ?server= cannot send an enrollment code anywhere else.

import { asOrigin } from '../../www/origin.js';

let parsed = { value: null, origins: [] };

/**
 * PAGE_ALLOWED_SERVERS as origins; an entry that is not exactly an http(s) origin is left out and logged (once per
 * isolate and value, not on every request).
 */
export function allowedServers(env) {
  const value = env.PAGE_ALLOWED_SERVERS ?? '';
  if (parsed.value === value) return parsed.origins;
  const origins = [];
  for (const entry of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const origin = asOrigin(entry);
    if (origin) origins.push(origin);
    else console.error(`PAGE_ALLOWED_SERVERS: ${JSON.stringify(entry)} is not an origin (http(s)://host[:port]); left out`);
  }
  parsed = { value, origins: Object.freeze(origins) };
  return parsed.origins;
}

/** GET /page-config.json: what the page reads before it contacts any server but its own origin. */
export function pageConfig(c) {
  c.header('cache-control', 'no-cache');
  return c.json({ allowed_servers: allowedServers(c.env) });
}

/**
 * The page itself (run_worker_first for / and /index.html): the asset with its _headers, the CSP's connect-src
 * 'self' widened by exactly the allowed servers. A 304 is widened too: a browser takes its headers over the
 * cached page's.
 */
export async function servePage(c) {
  const asset = await c.env.ASSETS.fetch(c.req.raw);
  const res = new Response(asset.body, asset);
  const csp = res.headers.get('content-security-policy');
  if (!csp && res.status === 200) {
    // www/dist was not assembled by scripts/build-www.sh (no _headers): no page without its policy.
    console.error('the page has no Content-Security-Policy: www/dist/_headers is missing');
    return c.text('Internal error', 500);
  }
  const extra = allowedServers(c.env);
  if (csp && extra.length) res.headers.set('content-security-policy', csp.replace(/(^|;\s*)connect-src ([^;]*)/, `$1connect-src $2 ${extra.join(' ')}`));
  return res;
}
