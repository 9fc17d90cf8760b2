// scepkit Worker: the SCEP endpoint, the admin API and the CRL, in front of D1.
import { Hono } from 'hono';
import * as scep from 'scepkit/server';
import { cors } from 'hono/cors';
import { admin, ApiError, crlResponse, errorResponse } from './admin.js';
import { documented, METHODS, openapi } from './openapi.js';
import { challengePage } from './mscep_admin.js';
import { pageConfig, servePage } from './page.js';
import { handleScep, publicProfiles } from './scep.js';
import { Store } from './store.js';

const app = new Hono();

// `make bench`'s latency model (bench/bench.mjs): D1 round trips made slower by BENCH_D1_RTT_MS, and counted.
app.use('*', async (c, next) => {
  if (c.env.BENCH_D1_RTT_MS === undefined) return next();
  const { delayedD1 } = await import('./bench_d1.js');
  const { trips, binding } = delayedD1(c.env.DB, Number(c.env.BENCH_D1_RTT_MS) || 0, Number(c.env.BENCH_D1_REPLICA_RTT_MS) || 0);
  c.env = { ...c.env, DB: binding };
  await next();
  c.header('x-bench-d1-trips', String(trips.primary));
  c.header('x-bench-d1-replica-trips', String(trips.replica));
});

// Every answer is read as its declared type only (no sniffing a DER body or an echoed name into HTML); the admin
// API's answers, enrollment codes among them, are never kept by a browser or a proxy.
app.use('*', async (c, next) => {
  await next();
  c.header('x-content-type-options', 'nosniff');
  if (c.req.path.startsWith('/api/')) c.header('cache-control', 'no-store');
});

// The enrollment page may be served from any static host pointed at this SCEP URL.
const publicCors = cors({ origin: '*', allowMethods: ['GET', 'POST', 'OPTIONS'], allowHeaders: ['content-type'], maxAge: 86400 });
for (const path of ['/scep', '/scep/*', '/cgi-bin/pkiclient.exe', '/scep-profiles.json', '/crl', '/crl/*']) app.use(path, publicCors);

app.get('/scep-profiles.json', (c) => publicProfiles(c));

// The enrollment page (www/dist; these two paths reach the Worker first) and the servers it may contact.
app.get('/', servePage);
app.get('/index.html', servePage);
app.get('/page-config.json', pageConfig);
// The admin console is static (www/admin, served by the assets layer at /admin/): it signs in to /api/v1.
app.get('/admin', (c) => c.redirect('/admin/', 301));

// RFC 8894 §4.1: the default profile at /scep (and the path Cisco-style clients hard-code), or one by name.
app.on(['GET', 'POST'], '/scep', (c) => handleScep(c, null));
app.on(['GET', 'POST'], '/cgi-bin/pkiclient.exe', (c) => handleScep(c, null));
app.on(['GET', 'POST'], '/scep/:profile', (c) => handleScep(c, c.req.param('profile')));

// NDES's one-time challenge page, where MDMs and firewalls fetch a challenge (HTTP Basic; NTLM is not offered).
for (const path of ['/certsrv/mscep_admin', '/certsrv/mscep_admin/']) app.get(path, (c) => challengePage(c, null));
for (const path of ['/scep/:profile/mscep_admin', '/scep/:profile/mscep_admin/']) app.get(path, (c) => challengePage(c, c.req.param('profile')));

app.get('/crl', (c) => crlResponse(c.env));
app.get('/crl/:ca', (c) => crlResponse(c.env, c.req.param('ca')));
app.get('/api/v1/openapi.json', (c) => c.json(openapi));
app.route('/api/v1', admin);

// Under /api/v1, a documented path with a method it does not take is 405 E013 (with Allow), anything else 404.
app.notFound((c) => {
  if (!c.req.path.startsWith('/api/')) return c.text('Not found', 404);
  const operations = documented(c.req.path.replace(/^\/api\/v1/, ''));
  const allowed = operations && METHODS.filter((m) => operations[m]).map((m) => m.toUpperCase());
  if (allowed?.length) {
    const e = new ApiError(405, 'E013', 'Method Not Supported', { method: `${c.req.method} is not one of ${allowed.join(', ')}` });
    c.header('allow', allowed.join(', '));
    return errorResponse(c, e);
  }
  return errorResponse(c, new ApiError(404, 'E005', 'Object Not Present', { path: c.req.path }));
});
app.onError((e, c) => (c.req.path.startsWith('/api/') || e instanceof ApiError ? errorResponse(c, e) : (console.error(e), c.text('Internal error', 500))));

/**
 * The Cron Trigger (wrangler.jsonc `triggers`): prunes what no request needs any more, as the core plans it
 * (src/retention.rs; `AUDIT_RETENTION_DAYS`, default 400), and audits what it deleted.
 */
export async function scheduled(controller, env) {
  const t = Math.floor(controller.scheduledTime / 1000);
  const plan = scep.prunePlan(t, env.AUDIT_RETENTION_DAYS);
  const store = new Store(env.DB);
  const counts = await store.prune(plan);
  await store.audit(scep.pruneSummary(plan, counts, t));
  return counts;
}

export default { fetch: app.fetch, scheduled };
