// The attacks of the trust review, on the wire: someone holding one valid code, one issued certificate, or
// sending junk. Each must be refused with a FAILURE CertRep that says why, issue nothing and burn nothing.
import { describe, expect, it } from 'vitest';
import { api, auditFor, BASE, enroll, enrolledSeat, env, fetchWorker, requester, scep } from './helpers.js';

const CORP = { subject: 'CN=$USERNAME,O=Example Corp', certificate_attributes: { dnsname: '$USERNAME.corp.example' } };

const certificatesOf = async (seat) => (await api('GET', `/certificates?seat_id=${encodeURIComponent(seat)}`)).json.data;
const enrollmentOf = async (s) => (await api('GET', `/enrollments?seat_id=${encodeURIComponent(s.seat)}`)).json.data.find((e) => e.id === s.enrollmentId);

/** Sends a CSR with these names under the seat's own valid code; returns the outcome. */
async function ask(s, { subject, sans = [] }) {
  const r = await requester(s, { subject });
  const csr = r.csr({ subject, sans });
  return r.send(r.build(csr), { expectedSpki: scep.csrPublicKey(csr) });
}

/** The seat's first certificate, then a request signed by it (RenewalReq, or certmonger's PKCSReq). */
async function renewalBy(first, url, { subject, messageType = 'RenewalReq' }) {
  const key = await scep.generateKey(2048);
  const csr = scep.buildCsr(key, { subject });
  const caBody = new Uint8Array(await (await fetchWorker(`${url}?operation=GetCACert`)).arrayBuffer());
  const req = scep.buildRequest(csr, first.privateKeyPkcs8, first.certificate, caBody, { messageType, cipher: 'aes-256-cbc', digest: 'sha256' });
  const res = await fetchWorker(`${url}?operation=PKIOperation`, { method: 'POST', body: req.message });
  return scep.readCertRep(new Uint8Array(await res.arrayBuffer()), req, first.privateKeyPkcs8, first.certificate, caBody, scep.csrPublicKey(csr), false);
}

describe('names come from the profile and the seat', () => {
  it("a code-holder's own names (extra RDNs, foreign and wildcard SANs) are refused, and the code stays usable", async () => {
    const s = await enrolledSeat(CORP);
    const evil = await ask(s, { subject: `OU=Domain Admins,O=Evil,CN=${s.seat}`, sans: ['dns:*.google.com', 'dns:login.microsoftonline.com'] });
    expect(evil).toMatchObject({ status: 'failed', failInfo: 'badRequest' });
    expect(evil.message).toContain(`CN=${s.seat},O=Example Corp`);
    const foreign = await ask(s, { subject: `CN=${s.seat},O=Example Corp`, sans: [`dns:${s.seat}.corp.example`, 'dns:*.google.com'] });
    expect(foreign.message).toContain('dns:*.google.com');
    expect(await certificatesOf(s.seat)).toHaveLength(0);
    expect((await enrollmentOf(s)).status).toBe('CREATED');

    const good = await ask(s, { subject: `CN=${s.seat},O=Example Corp` });
    expect(good.status).toBe('issued');
    const info = scep.inspect(good.certificate);
    expect(info.subject).toBe(`CN=${s.seat},O=Example Corp`);
    expect(info.sans).toEqual([`dns:${s.seat}.corp.example`]);
  });

  it('a second CN is refused as ambiguous', async () => {
    const s = await enrolledSeat(CORP);
    const twice = await ask(s, { subject: `CN=admin.victim.example,CN=${s.seat}` });
    expect(twice).toMatchObject({ status: 'failed', failInfo: 'badRequest' });
    expect(twice.message).toContain('names its seat 2 times');
    expect(await certificatesOf(s.seat)).toHaveLength(0);
  });

  it("the CA's and the RA's own DNs are never issued to a leaf", async () => {
    // A seat named like the CA, on a profile whose template renders the CA's organisation.
    const s = await enrolledSeat({ subject: 'CN=$USERNAME,O=scepkit' });
    for (const own of ['scepkit test CA', 'scepkit test RA']) {
      await api('POST', '/seats', { id: own });
      const e = await api('POST', '/enrollments', { seat_id: own, profile: s.profile });
      const out = await ask({ ...s, seat: own, code: e.json.enrollment_code }, { subject: `CN=${own},O=scepkit` });
      expect(out).toMatchObject({ status: 'failed', failInfo: 'badRequest' });
      expect(out.message).toContain("the CA's or RA's own name");
      expect(await certificatesOf(own)).toHaveLength(0);
    }
  });

  it('under csr_names replace the rendered names are issued whatever the CSR asks for', async () => {
    const s = await enrolledSeat({ ...CORP, csr_names: 'replace' });
    const out = await ask(s, { subject: `OU=Domain Admins,O=Evil,CN=${s.seat}`, sans: ['dns:*.google.com'] });
    expect(out.status).toBe('issued');
    const info = scep.inspect(out.certificate);
    expect(info.subject).toBe(`CN=${s.seat},O=Example Corp`);
    expect(info.sans).toEqual([`dns:${s.seat}.corp.example`]);
  });
});

describe('a renewal keeps its seat, its names and its profile', () => {
  it("seat A's certificate cannot be renewed into seat B", async () => {
    const a = await enrolledSeat({ validity_days: 30, renewal_window_days: 30 });
    const first = await enroll({ url: a.url, challenge: a.code, subject: `CN=${a.seat}` });
    const seatB = `${a.seat}-b`;
    await api('POST', '/seats', { id: seatB });
    const out = await renewalBy(first, a.url, { subject: `CN=${seatB}` });
    expect(out).toMatchObject({ status: 'failed', failInfo: 'badRequest' });
    expect(out.message).toContain(`CN=${a.seat}`);
    expect(await certificatesOf(seatB)).toHaveLength(0);
    const kept = await renewalBy(first, a.url, { subject: `CN=${a.seat}` });
    expect(kept.status).toBe('issued');
    expect(scep.inspect(kept.certificate).subject).toBe(`CN=${a.seat}`);
  });

  it("a certificate of profile X is not renewed at profile Y's URL, in either message form", async () => {
    const x = await enrolledSeat({ validity_days: 30, renewal_window_days: 30 });
    const first = await enroll({ url: x.url, challenge: x.code, subject: `CN=${x.seat}` });
    const y = await enrolledSeat({ validity_days: 30, renewal_window_days: 30, manual_approval: true });
    for (const messageType of ['RenewalReq', 'PKCSReq']) {
      const out = await renewalBy(first, y.url, { subject: `CN=${x.seat}`, messageType });
      expect(out).toMatchObject({ status: 'failed', failInfo: 'badRequest' });
      expect(out.message).toContain(`issued under profile ${x.profile}`);
    }
    expect(await certificatesOf(x.seat)).toHaveLength(1);
  });

  it('a renewal on a profile with manual approval is held, then issued for the same seat when approved', async () => {
    const s = await enrolledSeat({ validity_days: 30, renewal_window_days: 30 });
    const first = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    const body = (await api('GET', `/scep-profiles/${s.profileId}`)).json;
    delete body.id;
    expect((await api('PUT', `/scep-profiles/${s.profileId}`, { ...body, manual_approval: true })).status).toBe(200);
    const held = await renewalBy(first, s.url, { subject: `CN=${s.seat}` });
    expect(held.status).toBe('pending');
    const [pending, ...others] = (await api('GET', `/transactions?status=PENDING&seat_id=${s.seat}`)).json.data;
    expect(others).toEqual([]);
    expect(pending.message_type).toBe('RenewalReq');
    // What an approver is shown: the names the profile renders for the seat, the key, and where it came from.
    expect(pending.requested).toMatchObject({ subject: `CN=${s.seat}`, sans: [], key: { type: 'rsa', bits: 2048 } });
    expect(pending.client_address).toMatch(/^2001:db8:/);
    expect(pending).not.toHaveProperty('public_key');
    // Approval of a renewal goes by the transaction's enrollment; a renewal has none, so it is decided by transaction.
    const approved = await api('POST', `/transactions/${encodeURIComponent(pending.transaction_id)}/approve`, { profile_id: s.profileId, signer_fingerprint: pending.signer_fingerprint });
    expect(approved.status, JSON.stringify(approved.json)).toBe(200);
    const certs = await certificatesOf(s.seat);
    expect(certs).toHaveLength(2);
    expect(certs[0].renewed_by).toBe(certs[1].serial);
  });
});

describe('what the store keeps', () => {
  it('a transaction keeps the public key, not the CSR with its challengePassword', async () => {
    const s = await enrolledSeat({ manual_approval: true });
    const r = await requester(s);
    const out = await r.send(r.build(r.csr()));
    expect(out.status).toBe('pending');
    const rows = (await env.DB.prepare('SELECT public_key FROM transactions WHERE seat_id = ?').bind(s.seat).all()).results;
    expect(rows).toHaveLength(1);
    const stored = new Uint8Array(rows[0].public_key);
    const code = new TextEncoder().encode(s.code);
    const contains = (hay, needle) => hay.some((_, i) => needle.every((b, j) => hay[i + j] === b));
    expect(contains(stored, code)).toBe(false);
    expect(stored).toEqual(scep.csrPublicKey(r.csr()));
  });

  it('a fixed challenge is stored as a MAC, never in plain text, and still enrolls', async () => {
    const s = await enrolledSeat({ scep_challenge: { fixed: 'fixed-s3cret-value' } });
    const row = await env.DB.prepare('SELECT body FROM profiles WHERE id = ?').bind(s.profileId).first();
    expect(row.body).not.toContain('fixed-s3cret-value');
    expect(JSON.parse(row.body).scep_challenge.fixed).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect((await api('GET', `/scep-profiles/${s.profileId}`)).json.scep_challenge.fixed).toBe('********');
    const wrong = await enroll({ url: s.url, challenge: 'fixed-s3cret-valuE', subject: `CN=${s.seat}` }).catch((e) => e);
    expect(wrong.message).toContain('Challenge password is invalid');
    const ok = await enroll({ url: s.url, challenge: 'fixed-s3cret-value', subject: `CN=${s.seat}` });
    expect(scep.inspect(ok.certificate).subject).toBe(`CN=${s.seat}`);
  });
});

describe('the CRL and the message size', () => {
  it('/crl is signed once and served from cache until a revocation', async () => {
    const one = new Uint8Array(await (await fetchWorker(`${BASE}/crl`)).arrayBuffer());
    const two = new Uint8Array(await (await fetchWorker(`${BASE}/crl`)).arrayBuffer());
    expect(two).toEqual(one);
    const s = await enrolledSeat();
    const cert = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    expect((await api('POST', `/certificates/${scep.inspect(cert.certificate).serial}/revoke`)).status).toBe(200);
    const three = new Uint8Array(await (await fetchWorker(`${BASE}/crl`)).arrayBuffer());
    expect(three).not.toEqual(one);
    const four = new Uint8Array(await (await fetchWorker(`${BASE}/crl`)).arrayBuffer());
    expect(four).toEqual(three);
  });

  it('a body over 1 MB is refused from Content-Length, and a body without one stops being read at the cap', async () => {
    const s = await enrolledSeat();
    const big = new Uint8Array((1 << 20) + 1);
    const declared = await fetchWorker(`${s.url}?operation=PKIOperation`, { method: 'POST', body: big });
    expect(declared.status).toBe(400);
    expect(await declared.text()).toContain('larger than 1 MB');
    let pulled = 0;
    const endless = new ReadableStream({
      pull(controller) {
        pulled += 65536;
        if (pulled > 64 << 20) controller.close();
        else controller.enqueue(new Uint8Array(65536));
      },
    });
    const streamed = await fetchWorker(`${s.url}?operation=PKIOperation`, { method: 'POST', body: endless, duplex: 'half' });
    expect(streamed.status).toBe(400);
    expect(pulled).toBeLessThan(8 << 20);
  });
});

describe('key transport', () => {
  it('an oaep_only profile refuses PKCS#1 v1.5 before decrypting, and takes RSA-OAEP', async () => {
    const s = await enrolledSeat({ oaep_only: true });
    const r = await requester(s);
    const csr = r.csr();
    const v15 = await r.send(r.build(csr, { keyTransport: 'rsa-pkcs1v15' }));
    expect(v15).toMatchObject({ status: 'failed', failInfo: 'badAlg' });
    expect(v15.message).toContain('RSA-OAEP only');
    expect((await enrollmentOf(s)).status).toBe('CREATED');
    const oaep = await r.send(r.build(csr, { keyTransport: 'rsa-oaep-sha256', transactionId: 'oaep-1' }), { expectedSpki: scep.csrPublicKey(csr) });
    expect(oaep.status).toBe('issued');
  });
});

describe('the audit log', () => {
  it("a GetCert row names the requester, not the certificate owner's seat", async () => {
    const owner = await enrolledSeat();
    const ownerCert = await enroll({ url: owner.url, challenge: owner.code, subject: `CN=${owner.seat}` });
    const asker = await enrolledSeat();
    const askerCert = await enroll({ url: asker.url, challenge: asker.code, subject: `CN=${asker.seat}` });
    const serial = scep.inspect(ownerCert.certificate).serial;
    const caBody = new Uint8Array(await (await fetchWorker(`${asker.url}?operation=GetCACert`)).arrayBuffer());
    const req = scep.buildRequest(new Uint8Array(), askerCert.privateKeyPkcs8, askerCert.certificate, caBody, { messageType: 'GetCert', cipher: 'aes-128-cbc', digest: 'sha256', serial });
    await fetchWorker(`${asker.url}?operation=PKIOperation`, { method: 'POST', body: req.message });
    expect((await auditFor(owner.seat)).filter((a) => a.code === 'get_cert')).toHaveLength(0);
    const row = (await auditFor(asker.seat)).find((a) => a.code === 'get_cert');
    expect(row.message).toContain(`seat ${owner.seat}`);
  });
});
