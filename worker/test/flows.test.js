// Concurrency, retransmission, manual approval, GET transport quirks, GetCert/GetCRL and the CRL.
import { describe, expect, it } from 'vitest';
import { api, auditFor, BASE, enroll, enrolledSeat, failureOf, fetchWorker, profileBody, requester, scep } from './helpers.js';

/** The requester of helpers.js with its CSR and the issued certificate checked against that CSR's key. */
async function lowLevel(s) {
  const r = await requester(s);
  const csr = r.csr();
  const expectedSpki = scep.csrPublicKey(csr);
  return { ...r, build: (opts) => r.build(csr, opts), send: (req, opts) => r.send(req, { expectedSpki, ...opts }) };
}

describe('one code, one certificate', () => {
  it('100 concurrent requests with one code give exactly one certificate', async () => {
    const s = await enrolledSeat();
    const c = await lowLevel(s);
    const requests = Array.from({ length: 100 }, (_, i) => c.build({ transactionId: `race-${i}` }));
    const outcomes = await Promise.all(requests.map((r) => c.send(r)));
    expect(outcomes.filter((o) => o.status === 'issued')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'failed').every((o) => o.failInfo === 'badRequest')).toBe(true);
    expect((await api('GET', `/certificates?seat_id=${s.seat}`)).json.data).toHaveLength(1);
    const audit = await auditFor(s.seat);
    expect(audit).toHaveLength(100);
    expect(audit.filter((a) => a.status === 'Success')).toHaveLength(1);
  });

  it('a retransmission gets the same certificate; a different request under the same transactionID is refused', async () => {
    const s = await enrolledSeat();
    const c = await lowLevel(s);
    const req = c.build({ transactionId: 'retx-1' });
    const first = await c.send(req);
    const again = await c.send(req);
    expect(first.status).toBe('issued');
    expect(again.certificate).toEqual(first.certificate);
    // A new message for the same key and transactionID (a client that rebuilds on retry): same certificate.
    const rebuilt = await c.send(c.build({ transactionId: 'retx-1' }));
    expect(rebuilt.certificate).toEqual(first.certificate);
    // The same requester with another key under that transactionID is refused ...
    const otherKey = await scep.generateKey(2048);
    const otherCsr = scep.buildCsr(otherKey, { subject: `CN=${s.seat}`, challenge: s.code });
    const swapped = scep.buildRequest(otherCsr, c.key, c.signer, c.caBody, { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256', transactionId: 'retx-1' });
    expect(await c.send(swapped)).toMatchObject({ status: 'failed', failInfo: 'badRequest', message: 'transactionID retx-1 is already used by a different request' });
    // ... and another requester replaying it meets the redeemed code.
    const other = await lowLevel(s);
    const replay = await other.send(other.build({ transactionId: 'retx-1' }));
    expect(replay).toMatchObject({ status: 'failed', message: 'Challenge password is invalid - does not match the value configured by the Administrator' });
    expect((await api('GET', `/certificates?seat_id=${s.seat}`)).json.data).toHaveLength(1);
  });
});

describe('transport', () => {
  it('GET PKIOperation with line breaks and unescaped + and / (Cisco IOS, macOS)', async () => {
    const s = await enrolledSeat();
    const c = await lowLevel(s);
    const req = c.build();
    const b64 = decodeURIComponent(scep.encodeMessageParam(req.message));
    const sloppy = b64.replace(/(.{64})/g, '$1%0A');
    const outcome = await c.send(req, { get: true, raw: sloppy });
    expect(outcome.status).toBe('issued');
  });
});

describe('manual approval', () => {
  it('PENDING until an administrator approves, then the poll gets the certificate', async () => {
    const s = await enrolledSeat({ manual_approval: true });
    let approved = false;
    const result = await enroll({
      url: s.url, challenge: s.code, subject: `CN=${s.seat}`,
      onProgress: async (step) => {
        if (step === 'pending' && !approved) {
          approved = true;
          const pending = (await api('GET', '/transactions')).json.data.find((t) => t.seat_id === s.seat);
          expect(pending).toBeTruthy();
          const r = await api('POST', `/enrollments/${s.enrollmentId}/approve`);
          expect(r.status).toBe(200);
        }
      },
    });
    expect(approved).toBe(true);
    expect(scep.inspect(result.certificate).subject).toBe(`CN=${s.seat}`);
    const codes = (await auditFor(s.seat)).map((a) => a.code);
    expect(codes).toEqual(expect.arrayContaining(['pending', 'approved', 'resent']));
  });

  it('a rejected request ends in FAILURE', async () => {
    const s = await enrolledSeat({ manual_approval: true });
    const e = await failureOf(
      enroll({
        url: s.url, challenge: s.code, subject: `CN=${s.seat}`,
        onProgress: async (step) => step === 'pending' && (await api('POST', `/enrollments/${s.enrollmentId}/reject`)),
      }),
    );
    expect(e.message).toBe('The request was rejected by an administrator');
    expect((await api('POST', `/enrollments/${s.enrollmentId}/approve`)).status).toBe(404);
  });
});

describe('renewal and revocation', () => {
  it('a PKCSReq signed by a certificate we issued renews it (certmonger), without a code', async () => {
    const s = await enrolledSeat({ validity_days: 30, renewal_window_days: 30 });
    const first = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    // Build by hand: PKCSReq (not RenewalReq), signed by the issued certificate, no challenge.
    const key = await scep.generateKey(2048);
    const csr = scep.buildCsr(key, { subject: `CN=${s.seat}` });
    const caBody = new Uint8Array(await (await fetchWorker(`${s.url}?operation=GetCACert`)).arrayBuffer());
    const req = scep.buildRequest(csr, first.privateKeyPkcs8, first.certificate, caBody, { messageType: 'PKCSReq', cipher: 'aes-256-cbc', digest: 'sha256' });
    const res = await fetchWorker(`${s.url}?operation=PKIOperation`, { method: 'POST', body: req.message });
    const outcome = scep.readCertRep(new Uint8Array(await res.arrayBuffer()), req, first.privateKeyPkcs8, first.certificate, caBody, scep.csrPublicKey(csr), false);
    expect(outcome.status).toBe('issued');
    const certs = (await api('GET', `/certificates?seat_id=${s.seat}`)).json.data;
    expect(certs).toHaveLength(2);
    expect(certs[0].renewed_by).toBe(certs[1].serial);
  });

  it('revocation shows in GetCRL and /crl; GetCert returns an issued certificate', async () => {
    const s = await enrolledSeat();
    const cert = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    const serial = scep.inspect(cert.certificate).serial;
    expect((await api('POST', `/certificates/${serial}/revoke`)).status).toBe(200);
    expect((await api('POST', `/certificates/${serial}/revoke`)).status).toBe(409);
    const crlRes = await fetchWorker(`${BASE}/crl`);
    expect(crlRes.headers.get('content-type')).toBe('application/pkix-crl');
    const crl = new Uint8Array(await crlRes.arrayBuffer());
    const hex = [...crl].map((b) => b.toString(16).padStart(2, '0')).join('');
    expect(hex).toContain(serial);

    const caBody = new Uint8Array(await (await fetchWorker(`${s.url}?operation=GetCACert`)).arrayBuffer());
    for (const messageType of ['GetCert', 'GetCRL']) {
      const req = scep.buildRequest(new Uint8Array(), cert.privateKeyPkcs8, cert.certificate, caBody, { messageType, cipher: 'aes-128-cbc', digest: 'sha256', serial });
      const res = await fetchWorker(`${s.url}?operation=PKIOperation`, { method: 'POST', body: req.message });
      const outcome = scep.readCertRep(new Uint8Array(await res.arrayBuffer()), req, cert.privateKeyPkcs8, cert.certificate, caBody, undefined, false);
      if (messageType === 'GetCert') expect(outcome.certificate).toEqual(cert.certificate);
      else expect([...outcome.crls[0]].map((b) => b.toString(16).padStart(2, '0')).join('')).toContain(serial);
    }
  });
});

describe('profiles', () => {
  it('a change to a profile applies to the very next request, though enrollments keep a cached copy', async () => {
    const s = await enrolledSeat();
    // The first enrollment caches the profile as created.
    expect(scep.inspect((await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` })).certificate).subject).toBe(`CN=${s.seat}`);
    const nextCode = async (profile = s.profile) => (await api('POST', '/enrollments', { seat_id: s.seat, profile })).json.enrollment_code;

    // 3DES on the modern profile is refused; made legacy and held for approval, the next 3DES request is held.
    const c = await lowLevel({ ...s, code: await nextCode() });
    expect(await c.send(c.build({ cipher: 'des-ede3-cbc', legacy: true }))).toMatchObject({ status: 'failed', failInfo: 'badAlg' });
    expect((await api('PUT', `/scep-profiles/${s.profileId}`, profileBody(s.profile, { legacy: true, manual_approval: true }))).status).toBe(200);
    expect((await c.send(c.build({ cipher: 'des-ede3-cbc', legacy: true }), { legacy: true })).status).toBe('pending');

    // Renamed, the profile no longer answers under its old name.
    const d = await lowLevel({ ...s, code: await nextCode() });
    expect((await api('PUT', `/scep-profiles/${s.profileId}`, profileBody(`${s.profile}-b`))).status).toBe(200);
    await expect(d.send(d.build())).rejects.toThrow(/HTTP 404: No SCEP profile named/);
    const renamed = await lowLevel({ ...s, url: `${BASE}/scep/${s.profile}-b`, code: await nextCode(`${s.profile}-b`) });
    expect((await renamed.send(renamed.build())).status).toBe('issued');
  });
});
