// The SCEP endpoint (RFC 8894 §4): GetCACaps, GetCACert, PKIOperation (POST and GET).
// A PKIOperation is the core's step machine (scep.PkiOperation); this file only moves its bytes and rows.
// Every outcome writes one audit row, except an address's failures past the first few of a minute, which are
// counted (limits.js).
import * as scep from 'scepkit/server';
import { caOfProfile, identityOf, profileAndCa, SECRETS } from './ca.js';
import { auditFailure, refused } from './limits.js';
import { Store } from './store.js';

const PKI_MESSAGE = 'application/x-pki-message';
const MAX_MESSAGE = 1 << 20;
const MAX_WEBHOOK_ANSWER = 1 << 16;
const MAX_UPSTREAM_ANSWER = 1 << 20;
const now = () => Math.floor(Date.now() / 1000);
// GetCACaps and GetCACert answers may be kept a minute (every client asks both before each request, and a page
// fetches them ahead): a CA rollover is announced by GetNextCACert long before it happens, and a client that
// still encrypts to a CA promoted away in that minute gets a FAILURE it retries. Errors are never kept.
const KEEP_CA = 'max-age=60';

/** What the enrollment page needs to know of each profile: nothing secret. */
export async function publicProfiles(c) {
  const store = new Store(c.env.DB);
  const [profiles, fallback] = await Promise.all([store.profiles(), store.defaultProfile(c.env.DEFAULT_PROFILE)]);
  return c.json({
    default: fallback?.name ?? null,
    profiles: profiles.map(({ body }) => {
      const [sanType, sanTemplate] = Object.entries(body.certificate_attributes ?? {})[0] ?? [];
      return {
        name: body.name, subject: body.subject, rsa_nbits: Number(body.algorithm.rsa.rsa_nbits), digest: body.digest,
        san: sanType ? { type: sanType, template: sanTemplate } : null, manual_approval: body.manual_approval, fingerprint: body.fingerprint ?? null,
      };
    }),
  });
}

// Profiles as last read, per isolate, by the name a request used (or "" for the default profile). An
// enrollment uses its cached profile and checks it in the same D1 batch as the policy's facts; a changed or
// deleted profile is read again and the request handled afresh, so no decision is ever made on a stale one.
// Losing the cache loses nothing.
const profileCache = new Map();

async function readProfile(c, store, profileName) {
  return remember(c, profileName, profileName ? await store.profileByName(profileName) : await store.defaultProfile(c.env.DEFAULT_PROFILE));
}

function remember(c, profileName, profile) {
  // A stand-in for a DEFAULT_PROFILE that does not exist yet is not kept: its creation would go unnoticed.
  const standIn = !profileName && c.env.DEFAULT_PROFILE && profile?.name !== c.env.DEFAULT_PROFILE;
  if (profile && !standIn) profileCache.set(profileName ?? '', profile);
  else profileCache.delete(profileName ?? '');
  return profile;
}

// The CA row each cached profile issued under, per isolate by ca_identity_name: used only with a cached profile,
// and checked by the core in the facts' round trip (FactQuery.caIdentityName), so a CA disabled or rolled over
// since is never used for a decision. A fresh profile always comes with a fresh CA row.
const caCache = new Map();

async function profileIdentity(c, store, body, cached) {
  const row = (cached && caCache.get(body.ca_identity_name)) || (await caOfProfile(c.env, store, body));
  caCache.set(body.ca_identity_name, row);
  return identityOf(c.env, row);
}

const noProfile = (c, profileName) => c.text(profileName ? `No SCEP profile named ${profileName}` : 'No SCEP profile is configured', 404);

export async function handleScep(c, profileName) {
  // D1's Sessions API: reads may be served by the nearest replica, writes go to the primary, and a read after a
  // write sees it. Safe here because nothing a PKIOperation decides is written on a read alone: every claim
  // checks again on the primary what the decision relied on (the core's Preconditions), and a lost claim is
  // decided again on reads that follow the write.
  const store = new Store(c.env.DB.withSession('first-unconstrained'));
  const operation = c.req.query('operation');
  if (operation === 'PKIOperation') {
    // Run to the end even if the client goes away: a request forwarded to an upstream CA then settles or gives
    // its claim back, instead of staying claimed.
    const work = pkiOperation(c, store, profileName);
    try {
      c.executionCtx.waitUntil(work.catch(() => {}));
    } catch {
      // no ExecutionContext (a direct call): the request's own await is all there is
    }
    return work;
  }
  // The profile, its CA (the CA manager's current one of its ca_identity_name) and during a rollover the next one
  // (staged in the CA manager, or for the secrets' CA the NEXT_CA_CERT and NEXT_RA_CERT secrets): one round trip.
  const rows = await profileAndCa(c.env, store, profileName);
  const profile = remember(c, profileName, rows.profile);
  if (!profile) return noProfile(c, profileName);
  const { ca } = rows;
  const next = () => {
    if (rows.next) return { ca: new Uint8Array(rows.next.certificate) };
    const pem = (p) => scep.toDer(new TextEncoder().encode(p));
    if (ca.id === SECRETS && c.env.NEXT_CA_CERT) return { ca: pem(c.env.NEXT_CA_CERT), ra: c.env.NEXT_RA_CERT ? pem(c.env.NEXT_RA_CERT) : undefined };
    return null;
  };
  switch (operation) {
    case 'GetCACaps':
      return c.text(scep.serverCaCaps(profile.body.legacy, Boolean(await next())), 200, { 'content-type': 'text/plain', 'cache-control': KEEP_CA });
    case 'GetCACert': {
      // RA mode: the upstream CA (as pinned) and this service's RA, which the devices encrypt to.
      const upstream = scep.upstreamCaCertRequest(profile.body);
      try {
        const identity = await identityOf(c.env, ca);
        const { contentType, body } = upstream ? scep.upstreamCaCertResponse(profile.body, await keptUpstreamAnswer(upstream), identity) : identity.caCertResponse();
        return new Response(body, { headers: { 'content-type': contentType, 'cache-control': KEEP_CA } });
      } catch (e) {
        if (!(upstream && e instanceof scep.ScepError)) throw e;
        return c.text(`${e.message}. ${e.resolution}`, 502);
      }
    }
    case 'GetNextCACert': {
      if (profile.body.upstream) return c.text("The upstream CA's rollover is not relayed: ask the upstream CA", 404);
      // Only during a CA rollover; signed by the current CA (RFC 8894 §3.5.2).
      const staged = await next();
      if (!staged) return c.text('No next CA certificate is configured', 404);
      const body = (await identityOf(c.env, ca)).nextCaCertResponse(staged.ca, staged.ra);
      return new Response(body, { headers: { 'content-type': 'application/x-x509-next-ca-cert' } });
    }
    default:
      return c.text(operation ? `Unsupported operation ${operation}` : 'Missing operation parameter', 400);
  }
}

async function readMessage(c) {
  if (c.req.method === 'POST') {
    // An isolate has 128 MB: an oversized body is refused from its Content-Length before any of it is read,
    // and a body without one stops being read at the cap.
    const declared = Number(c.req.header('content-length'));
    if (declared > MAX_MESSAGE) return { error: 'message larger than 1 MB' };
    const bytes = await readCapped(c.req.raw.body, MAX_MESSAGE);
    return bytes ? { bytes } : { error: 'message larger than 1 MB' };
  }
  // The raw query value: clients send unescaped + and /, and line breaks; the core decodes all of it.
  const raw = new URL(c.req.url).search.match(/[?&]message=([^&]*)/)?.[1];
  if (!raw) return { error: 'missing message parameter' };
  if (raw.length > MAX_MESSAGE * 2) return { error: 'message larger than 1 MB' };
  try {
    return { bytes: scep.decodeMessageParam(raw) };
  } catch (e) {
    return { error: e.message };
  }
}

/** The stream's bytes, or null as soon as they exceed `cap` (the rest is not read). */
async function readCapped(stream, cap) {
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.byteLength;
    if (length > cap) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * One PKIOperation: the core's step machine (scep.PkiOperation) decides every step; this loop runs the queries
 * and writes it asks for and sends its answer. Bounded, as is every loop here (the machine ends in a few steps).
 */
async function pkiOperation(c, sessionStore, profileName) {
  let store = sessionStore;
  const t = now();
  const tooMany = refused(c, t);
  if (tooMany) return tooMany;
  const { bytes, error } = await readMessage(c);
  const cached = profileCache.get(profileName ?? '');
  const profile = cached ?? (await readProfile(c, store, profileName));
  if (!profile) return noProfile(c, profileName);
  if (error) {
    await auditFailure(c, store, { time: t, profile: profile.name, operation: 'PKIOperation', status: 'Failure', code: 'malformed', message: error });
    return c.text(`Bad SCEP request: ${error}`, 400);
  }
  let id = await profileIdentity(c, store, profile.body, Boolean(cached));
  const client = c.req.header('cf-connecting-ip') ?? null;
  const op = new scep.PkiOperation(bytes, { ...profile, cached: Boolean(cached) }, id, c.env.CODE_KEY, t, client);
  try {
    let step = op.step;
    for (let i = 0; i < 16 && step.step !== 'answer' && step.step !== 'refuse'; i++) {
      try {
        switch (step.step) {
          case 'key':
            // A private-key operation (open the content key, sign the certificate or the CertRep): performed
            // with the identity's keys (workerd's node:crypto, or the pure-wasm fallback).
            step = op.withKey(id);
            break;
          case 'needProfile': {
            // The profile and its CA, both read afresh.
            const fresh = await readProfile(c, store, profileName);
            if (fresh) id = await profileIdentity(c, store, fresh.body, false);
            step = op.withProfile(id, fresh ?? null);
            break;
          }
          case 'needFacts':
            // A refusal is confirmed on the primary's facts (a replica may not have a fresh code or seat yet):
            // from then on the operation reads there.
            if (step.query.primary && !store.readsPrimary) store = Store.primary(c.env.DB);
            step = op.withFacts(id, await store.facts(step.query));
            break;
          case 'needCrl':
            // From the primary: a CRL is signed from what is revoked, which a lagging replica may not show yet.
            step = op.withCrl(id, await currentCrl(new Store(c.env.DB), id, t));
            break;
          case 'callWebhook':
            step = op.withWebhook(id, await callWebhook(step.call));
            break;
          case 'callUpstream':
            // GetCACaps and GetCACert answers are kept a while (the core checks the pin on every use).
            step = op.withUpstream(id, await (step.request.method === 'GET' && /[?&]operation=GetCA(Caps|Cert)(&|$)/.test(step.request.url) ? keptUpstreamAnswer(step.request) : callUpstream(step.request)));
            break;
          case 'write':
            step = op.written(id, await store.write(step.writes));
            break;
          default:
            throw new Error(`unexpected step ${step.step}`);
        }
      } catch (e) {
        // The store failed: nothing half-done survives (a batch is all or nothing); the client may retry.
        console.error('PKIOperation failed', e);
        step = op.hostFailed(id);
      }
    }
    const { audit } = step;
    if (audit?.status === 'Failure') await auditFailure(c, store, audit);
    else if (audit) await store.audit(audit);
    if (step.step === 'refuse') return c.text(step.text, step.status);
    if (step.step !== 'answer') throw new Error(`the PKIOperation did not end: ${step.step}`);
    return new Response(step.body, { headers: { 'content-type': PKI_MESSAGE } });
  } finally {
    op.free();
  }
}

/** Sends the core's webhook request as it is: `{ status, body }` of the answer, or `{ error }` if none came in time. */
async function callWebhook({ url, headers, body, timeoutMs }) {
  try {
    const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    const answer = await readCapped(res.body, MAX_WEBHOOK_ANSWER);
    return answer ? { status: res.status, body: new TextDecoder().decode(answer) } : { error: 'an answer larger than 64 KB' };
  } catch (e) {
    return { error: e?.name === 'TimeoutError' ? 'no answer in time' : `could not be reached: ${e?.message ?? e}` };
  }
}

// The upstream's GetCACaps and GetCACert answers, per isolate, for 5 minutes: anonymous GetCACerts of an RA-mode
// profile and the devices' polls do not each reach the upstream for them. The core checks the pinned fingerprint
// on every use, so a kept answer decides nothing.
const upstreamCaCerts = new Map();
const UPSTREAM_CA_CERT_TTL = 300_000;

async function keptUpstreamAnswer(request) {
  const kept = upstreamCaCerts.get(request.url);
  if (kept && kept.until > Date.now()) return kept.answer;
  const answer = await callUpstream(request);
  if (answer.status >= 200 && answer.status < 300) {
    if (upstreamCaCerts.size >= 100) upstreamCaCerts.clear();
    upstreamCaCerts.set(request.url, { answer, until: Date.now() + UPSTREAM_CA_CERT_TTL });
  }
  return answer;
}

/**
 * Sends the core's request to an upstream CA (RA mode) as it is: `{ status, contentType, body }` of the answer,
 * or `{ error }` if none came in time. Redirects are not followed: the core asked for this URL.
 */
export async function callUpstream({ method, url, contentType, headers, body, timeoutMs }) {
  try {
    const sent = new Headers(headers);
    if (contentType) sent.set('content-type', contentType);
    const res = await fetch(url, { method, headers: sent, body: body ?? undefined, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    const answer = await readCapped(res.body, MAX_UPSTREAM_ANSWER);
    return answer ? { status: res.status, contentType: res.headers.get('content-type'), body: answer } : { error: 'an answer larger than 1 MB' };
  } catch (e) {
    return { error: e?.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `${e?.message ?? e}` };
  }
}

/** The current CRL: the kept one, or a new one when the core says so (crl::renew_at), which is then kept. */
export async function currentCrl(store, id, t) {
  const caId = id.caId;
  const { cached, revokedCount } = await store.crlState(caId);
  const kept = cached && { thisUpdate: cached.this_update, nextUpdate: cached.next_update, revokedCount: cached.revoked_count };
  const renewal = scep.crlRenewal(kept, revokedCount, t);
  if (!renewal) return new Uint8Array(cached.der);
  const [revoked, number] = await Promise.all([store.revoked(caId), store.nextCrlNumber(caId)]);
  const der = id.crl(revoked, number, renewal.thisUpdate, renewal.nextUpdate);
  await store.saveCrl(caId, { number, ...renewal, revokedCount: revoked.length, der });
  return der;
}

