// The SCEP endpoint (RFC 8894 §4): GetCACaps, GetCACert, PKIOperation (POST and GET).
// The path of one PKIOperation: read → open (core) → store reads → decide (core) → atomic redemption →
// issue (core) → save → CertRep (core). Every outcome writes one audit row, except an address's failures past
// the first few of a minute, which are counted (limits.js).
import * as scep from 'scepkit';
import { caCertificate, identity } from './ca.js';
import { auditFailure, refused } from './limits.js';
import { Store } from './store.js';

const PKI_MESSAGE = 'application/x-pki-message';
const MAX_MESSAGE = 1 << 20;
const now = () => Math.floor(Date.now() / 1000);

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
  const profile = profileName ? await store.profileByName(profileName) : await store.defaultProfile(c.env.DEFAULT_PROFILE);
  // A stand-in for a DEFAULT_PROFILE that does not exist yet is not kept: its creation would go unnoticed.
  const standIn = !profileName && c.env.DEFAULT_PROFILE && profile?.name !== c.env.DEFAULT_PROFILE;
  if (profile && !standIn) profileCache.set(profileName ?? '', profile);
  else profileCache.delete(profileName ?? '');
  return profile;
}

const noProfile = (c, profileName) => c.text(profileName ? `No SCEP profile named ${profileName}` : 'No SCEP profile is configured', 404);

export async function handleScep(c, profileName) {
  const store = new Store(c.env.DB);
  const operation = c.req.query('operation');
  if (operation === 'PKIOperation') return pkiOperation(c, store, profileName);
  const profile = await readProfile(c, store, profileName);
  if (!profile) return noProfile(c, profileName);
  switch (operation) {
    case 'GetCACaps':
      return c.text(scep.serverCaCaps(profile.body.legacy, Boolean(c.env.NEXT_CA_CERT)), 200, { 'content-type': 'text/plain' });
    case 'GetCACert': {
      const { contentType, body } = identity(c.env).caCertResponse();
      return new Response(body, { headers: { 'content-type': contentType } });
    }
    case 'GetNextCACert': {
      // Only during a CA rollover: NEXT_CA_CERT (and NEXT_RA_CERT) hold the certificates that take over.
      if (!c.env.NEXT_CA_CERT) return c.text('No next CA certificate is configured', 404);
      const pem = (p) => scep.toDer(new TextEncoder().encode(p));
      const body = identity(c.env).nextCaCertResponse(pem(c.env.NEXT_CA_CERT), c.env.NEXT_RA_CERT ? pem(c.env.NEXT_RA_CERT) : undefined);
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

async function pkiOperation(c, store, profileName) {
  const t = now();
  const refusal = refused(c, t);
  if (refusal) return refusal;
  const { bytes, error } = await readMessage(c);
  let request;
  try {
    if (error) throw new Error(error);
    request = scep.readRequest(bytes);
  } catch (e) {
    const profile = await readProfile(c, store, profileName);
    if (!profile) return noProfile(c, profileName);
    await auditFailure(c, store, { time: t, profile: profile.name, operation: 'PKIOperation', status: 'Failure', code: 'malformed', message: e.message });
    return c.text(`Bad SCEP request: ${e.message}`, 400);
  }
  // Enrollments check a cached profile in their facts batch; other operations read it first.
  const cached = ['PKCSReq', 'RenewalReq', 'CertPoll'].includes(request.messageType) ? profileCache.get(profileName ?? '') : undefined;
  const profile = cached ?? (await readProfile(c, store, profileName));
  if (!profile) return noProfile(c, profileName);
  return answer({ c, store, profileName, profile, cached: Boolean(cached), request, t });
}

/** Handles the request again with the profile as D1 has it now (the cached one was stale, or is doubted). */
async function afresh(ctx) {
  const profile = await readProfile(ctx.c, ctx.store, ctx.profileName);
  if (!profile) return noProfile(ctx.c, ctx.profileName);
  return answer({ ...ctx, profile, cached: false });
}

async function answer({ c, store, profileName, profile, cached, request, t }) {
  const auditEntry = (entry) => ({ time: t, profile: profile.name, operation: 'PKIOperation', ...entry });
  const ctx = { c, store, profileName, profile, cached, request, t, id: identity(c.env), legacy: Boolean(profile.body.legacy) };
  ctx.auditEntry = (entry) => auditEntry({ transactionId: request.transactionId, operation: request.messageType, ...entry });
  ctx.audit = (entry) => store.audit(ctx.auditEntry(entry));
  let facts;
  try {
    facts = request.open(ctx.id, ctx.legacy, Boolean(profile.body.oaep_only));
  } catch (e) {
    // A refusal (e.g. 3DES on a modern profile) is only given on the profile as D1 has it.
    return cached ? afresh(ctx) : fail(ctx, e);
  }
  ctx.facts = facts;
  try {
    switch (facts.message_type) {
      case 'GetCert':
        return await getCert(ctx);
      case 'GetCRL':
        return await getCrl(ctx);
      default:
        return await enrollment(ctx);
    }
  } catch (e) {
    // A store or host failure: the client gets a FAILURE it can retry, the admin an audit row.
    console.error('PKIOperation failed', e);
    return fail(ctx, { failInfo: 'badRequest', kind: 'internal', message: 'The SCEP service could not complete the request; retry later' });
  }
}

async function enrollment(ctx) {
  const { store, profile, request, facts, t } = ctx;
  let seatId = null;
  if (facts.csr) {
    try {
      seatId = request.seatId(profile.body);
    } catch {
      // the policy reports the missing seat with the spec's wording
    }
  }
  const { seatExists, openEnrollment, redeemed, signer, prior, profileBody } = await store.requestFacts({
    seatId, profileId: profile.id, signerFingerprint: facts.signer.fingerprint, selfSigned: facts.signer.self_signed, transactionId: facts.transaction_id, checkProfile: ctx.cached,
  });
  if (ctx.cached && profileBody !== profile.stored) return afresh(ctx);
  const storeFacts = {
    seat_exists: seatExists,
    open_enrollment: openEnrollment ?? undefined,
    redeemed_enrollment: redeemed ?? undefined,
    signer_certificate: signer
      ? { serial: signer.serial, seat_id: signer.seat_id, profile_id: signer.profile_id, profile_name: signer.profile_name ?? undefined, not_after: signer.not_after, revoked: signer.revoked_at != null, renewed: signer.renewed_by != null }
      : undefined,
    prior_transaction: prior ? { status: prior.status, key_digest: prior.key_digest, certificate_serial: prior.certificate_serial ?? undefined, message: prior.message ?? undefined } : undefined,
  };
  const d = request.decide(ctx.id, profile.body, storeFacts, ctx.c.env.CODE_KEY, t);
  ctx.seatId = d.seat_id ?? seatId ?? signer?.seat_id ?? prior?.seat_id;
  switch (d.decision) {
    case 'reject':
      return fail(ctx, { failInfo: d.error.fail_info, kind: d.error.kind, message: d.error.message });
    case 'pending':
      await ctx.audit({ seatId: ctx.seatId, status: 'Success', code: 'pending', message: 'Waiting for administrator approval' });
      return reply(ctx, { status: 'pending' });
    case 'resend': {
      const cert = await store.certificateBySerial(d.serial);
      await ctx.audit({ seatId: ctx.seatId, status: 'Success', code: 'resent', message: `Certificate ${d.serial} sent again` });
      return reply(ctx, { status: 'issued', certificates: [new Uint8Array(cert.der), caDer(ctx)] });
    }
    case 'hold':
      return hold(ctx, d);
    case 'issue':
      return issue(ctx, d);
    default:
      throw new Error(`unknown decision ${d.decision}`);
  }
}

function caDer(ctx) {
  return caCertificate(ctx.c.env);
}

/**
 * What a decision claims, as the first statement of the batch that saves it, and the guard every other
 * statement of that batch carries: the enrollment code's redemption, or (when issuing) the renewed
 * certificate. The batch is all or nothing, so a crash at any point leaves the code CREATED or the
 * certificate saved, never a redeemed code without its certificate.
 */
function claimFor(ctx, d, claimId, { issuing }) {
  const { store, facts, t } = ctx;
  if (d.redeem) return { statement: store.redeemStatement(d.redeem, facts.transaction_id, claimId, t), guard: store.redeemedBy(d.redeem, claimId) };
  if (issuing && d.renews) return { statement: store.claimRenewalStatement(d.renews, claimId), guard: store.renewedBy(d.renews, claimId) };
  return null;
}

/** Runs the claim and the rows it guards in one batch; false when another request won the claim (nothing saved). */
async function saveClaimed(ctx, claim, rows) {
  const results = await ctx.store.batch(claim ? [claim.statement, ...rows(claim.guard)] : rows(null));
  return !claim || results[0].meta.changes === 1;
}

/**
 * Another request took the code or renewed the certificate between our read and our batch. Handled once
 * more on fresh facts: a copy of the same request that won is answered with its certificate, anything else
 * is refused by the policy.
 */
function lostClaim(ctx, d) {
  if (ctx.raced) return fail(ctx, scep.refusal(d.redeem ? 'challenge_invalid' : 'already_renewed'));
  return enrollment({ ...ctx, raced: true });
}

async function hold(ctx, d) {
  const { store, profile, facts, t } = ctx;
  const claim = claimFor(ctx, d, crypto.randomUUID(), { issuing: false });
  const saved = await saveClaimed(ctx, claim, (guard) => [
    store.transactionStatement(
      {
        profileId: profile.id, transactionId: facts.transaction_id, signerFingerprint: facts.signer.fingerprint, seatId: d.seat_id, messageType: facts.message_type, keyDigest: facts.key_digest,
        status: 'PENDING', publicKey: facts.public_key, plan: d.plan, enrollmentId: d.redeem, renews: d.renews, now: t,
      },
      guard,
    ),
    store.auditStatement(ctx.auditEntry({ seatId: d.seat_id, status: 'Success', code: 'pending', message: `Request held for administrator approval${d.renews ? ` (renewing ${d.renews})` : ''}` }), guard),
  ]);
  if (!saved) return lostClaim(ctx, d);
  return reply(ctx, { status: 'pending' });
}

/** Issues a certificate for a policy plan; returns it with the row that saves it (`store.certificateStatement`).
 * Shared by the SCEP path and admin approval. */
export function issueCertificate({ id, profile, publicKey, plan, seatId, transactionId, t, serial = randomSerial() }) {
  const der = id.issue(publicKey, { ...plan, serial });
  const info = scep.inspect(der);
  const row = { serial, fingerprint: info.sha256Fingerprint, seatId, profileId: profile.id, subject: info.subject, notBefore: plan.not_before, notAfter: plan.not_after, der, transactionId, now: t };
  return { serial, der, row };
}

async function issue(ctx, d) {
  const { store, profile, facts, t } = ctx;
  const issued = issueCertificate({ id: ctx.id, profile, publicKey: facts.public_key, plan: d.plan, seatId: d.seat_id, transactionId: facts.transaction_id, t });
  // The new serial is the claim: unique to this attempt.
  const claim = claimFor(ctx, d, issued.serial, { issuing: true });
  const saved = await saveClaimed(ctx, claim, (guard) => [
    store.certificateStatement(issued.row, guard),
    store.transactionStatement(
      {
        profileId: profile.id, transactionId: facts.transaction_id, signerFingerprint: facts.signer.fingerprint, seatId: d.seat_id, messageType: facts.message_type, keyDigest: facts.key_digest,
        status: 'ISSUED', publicKey: facts.public_key, plan: d.plan, enrollmentId: d.redeem, renews: d.renews, serial: issued.serial, now: t,
      },
      guard,
    ),
    store.auditStatement(ctx.auditEntry({ seatId: d.seat_id, status: 'Success', code: d.renews ? 'renewed' : 'issued', message: `Issued certificate ${issued.serial}${d.renews ? ` renewing ${d.renews}` : ''}` }), guard),
  ]);
  if (!saved) return lostClaim(ctx, d);
  return reply(ctx, { status: 'issued', certificates: [issued.der, caDer(ctx)] });
}

function randomSerial() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] & 0x7f) | 0x01; // positive, 16 octets, never a leading zero
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Who sent a request, for the audit log: the seat of the certificate that signed it when we issued that
 * certificate, else nobody's (an anonymous, self-signed requester) — never the seat a request asks about. */
async function requester(ctx) {
  const { signer } = ctx.facts;
  const issued = signer.self_signed ? null : await ctx.store.certificateByFingerprint(signer.fingerprint);
  return { seatId: issued?.seat_id ?? null, name: `${signer.subject}${issued ? '' : ' (not issued by this CA)'}` };
}

async function getCert(ctx) {
  const serial = ctx.facts.issuer_and_serial[1];
  const [cert, who] = await Promise.all([ctx.store.certificateBySerial(serial), requester(ctx)]);
  ctx.seatId = who.seatId;
  if (!cert) return fail(ctx, { failInfo: 'badCertId', kind: 'not_found', message: `No certificate with serial ${serial} was issued by this CA` });
  await ctx.audit({ seatId: who.seatId, status: 'Success', code: 'get_cert', message: `Certificate ${serial} (seat ${cert.seat_id}) sent to ${who.name}` });
  return reply(ctx, { status: 'issued', certificates: [new Uint8Array(cert.der)] });
}

async function getCrl(ctx) {
  const [crl, who] = await Promise.all([currentCrl(ctx.store, ctx.id, ctx.t), requester(ctx)]);
  await ctx.audit({ seatId: who.seatId, status: 'Success', code: 'get_crl', message: `CRL sent to ${who.name}` });
  return reply(ctx, { status: 'crl', crls: [crl] });
}

const CRL_VALIDITY = 86400;

/**
 * The current CRL: the cached one while more than half of its validity is left and no certificate was revoked
 * since it was signed; otherwise a new one (valid for a day, the next CRL number), which is then cached.
 */
export async function currentCrl(store, id, t) {
  const { cached, revokedCount } = await store.crlState();
  if (cached && cached.revoked_count === revokedCount && t < cached.next_update - CRL_VALIDITY / 2 && t >= cached.this_update) return new Uint8Array(cached.der);
  const [revoked, number] = await Promise.all([store.revoked(), store.nextCrlNumber()]);
  const der = id.crl(revoked, number, t, t + CRL_VALIDITY);
  await store.saveCrl({ number, thisUpdate: t, nextUpdate: t + CRL_VALIDITY, revokedCount: revoked.length, der });
  return der;
}

async function fail(ctx, e) {
  const message = e.message ?? String(e);
  await auditFailure(ctx.c, ctx.store, ctx.auditEntry({ seatId: ctx.seatId, status: 'Failure', code: e.kind ?? 'failed', message }));
  return reply(ctx, { status: 'failed', failInfo: e.failInfo ?? 'badRequest', message });
}

function reply(ctx, outcome) {
  let body;
  try {
    body = scep.certRep(ctx.request, outcome, ctx.id, ctx.legacy);
  } catch (e) {
    // A request the core could read but cannot be answered on the wire is still the requester's fault.
    return new Response(`Bad SCEP request: cannot answer it: ${e.message}`, { status: 400 });
  }
  return new Response(body, { headers: { 'content-type': PKI_MESSAGE } });
}
