// Every enrollment failure of shared/spec/enrollment-errors.md, provoked on the wire and read back from the
// audit log, plus the protocol's own refusals.
import { describe, expect, it } from 'vitest';
import { api, auditFor, BASE, enroll, enrolledSeat, failureOf, fetchWorker, requester, scep, unique } from './helpers.js';

async function expectFailure(promise, { failInfo, message, seat }) {
  const e = await failureOf(promise);
  expect(e).toBeInstanceOf(scep.ScepError);
  expect(e.kind).toBe('refused');
  expect(e.failInfo).toBe(failInfo);
  expect(e.message).toEqual(message);
  expect(e.resolution).toBeTruthy();
  if (seat) {
    const [last] = await auditFor(seat);
    expect(last).toMatchObject({ status: 'Failure', message, transaction_id: e.transactionId });
  }
  return e;
}

describe('the spec failures', () => {
  it('Failed to decrypt a PKCS7 message: the envelope is for another CA', async () => {
    const s = await enrolledSeat();
    const r = await requester(s);
    const now = Math.floor(Date.now() / 1000);
    const strangerKey = await scep.generateKey(2048);
    const stranger = scep.selfSignedCertificate(strangerKey, 'CN=stranger CA', now - 60, now + 3600, 'sha256', 'ca');
    const req = scep.buildRequest(r.csr(), r.key, r.signer, stranger, { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256' });
    expect(await r.send(req)).toMatchObject({ status: 'failed', failInfo: 'badMessageCheck', message: 'Failed to decrypt a PKCS7 message' });
  });

  it('Could not find seat ... using subject.common_name as seat id mapping', async () => {
    const s = await enrolledSeat();
    const ghost = unique('ghost');
    await expectFailure(enroll({ url: s.url, challenge: s.code, subject: `CN=${ghost}` }), {
      failInfo: 'badCertId',
      message: `Could not find seat with identifier = ${ghost} using subject.common_name as seat id mapping`,
    });
    const [last] = (await api('GET', '/audit-logs?status=Failure')).json.data.filter((l) => l.message.includes(ghost));
    expect(last.status).toBe('Failure');
  });

  it('Challenge password is invalid: a wrong code, and a code already redeemed', async () => {
    const s = await enrolledSeat();
    const message = 'Challenge password is invalid - does not match the value configured by the Administrator';
    await expectFailure(enroll({ url: s.url, challenge: 'AAAAA-BBBBB-CCCCC-DDDDD', subject: `CN=${s.seat}` }), { failInfo: 'badRequest', message, seat: s.seat });
    await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    await expectFailure(enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` }), { failInfo: 'badRequest', message, seat: s.seat });
  });

  it('No SCEP enrollment with status = CREATED exists for seat', async () => {
    const s = await enrolledSeat();
    const bare = unique('bare');
    await api('POST', '/seats', { id: bare });
    await expectFailure(enroll({ url: s.url, challenge: s.code, subject: `CN=${bare}` }), {
      failInfo: 'badRequest',
      message: `No SCEP enrollment with status = CREATED exists for seat with identifier = ${bare}`,
      seat: bare,
    });
  });

  it('CSR key length n does not match m', async () => {
    const s = await enrolledSeat({ algorithm: { rsa: { rsa_nbits: 3072 } } });
    await expectFailure(enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}`, keyBits: 2048 }), { failInfo: 'badAlg', message: 'CSR key length 2048 does not match 3072', seat: s.seat });
    // The code was not consumed by the refused request.
    const ok = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}`, keyBits: 3072 });
    expect(scep.inspect(ok.certificate).subject).toBe(`CN=${s.seat}`);
  });

  it('renewal: not permitted until the window opens; already renewed; revoked', async () => {
    const s = await enrolledSeat({ validity_days: 10, renewal_window_days: 9 });
    const first = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    const renew = (cert, url = s.url) => scep.renew({ url, certificate: cert.certificatePem, privateKey: cert.privateKeyPem, fetch: fetchWorker });
    const e = await expectFailure(renew(first), { failInfo: 'badTime', message: expect.stringMatching(/^Failed to renew the specified certificate: renewal is not permitted until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\[UTC\]$/), seat: s.seat });
    const opens = Date.parse(e.message.match(/until (.*)\[UTC\]/)[1]) / 1000;
    const notAfter = Date.parse(scep.inspect(first.certificate).notAfter) / 1000;
    expect(notAfter - opens).toBe(9 * 86400);


    // A window as long as the validity: renewable at once. The first renewal succeeds, the second is refused.
    const open = await enrolledSeat({ validity_days: 10, renewal_window_days: 10 });
    const cert = await enroll({ url: open.url, challenge: open.code, subject: `CN=${open.seat}` });
    const renewed = await renew(cert, open.url);
    expect(scep.inspect(renewed.certificate).subject).toBe(`CN=${open.seat}`);
    await expectFailure(renew(cert, open.url), { failInfo: 'badCertId', message: 'Failed to renew the specified certificate: it already has been renewed', seat: open.seat });

    const serial = scep.inspect(renewed.certificate).serial;
    expect((await api('POST', `/certificates/${serial}/revoke`)).status).toBe(200);
    await expectFailure(renew(renewed, open.url), { failInfo: 'badCertId', message: 'Failed to renew the specified certificate: it has been revoked', seat: open.seat });
  });
});

describe('protocol refusals', () => {
  it('garbage is HTTP 400 with a short text, never a 500', async () => {
    for (const body of [new Uint8Array([1, 2, 3]), new Uint8Array(0), new TextEncoder().encode('hello')]) {
      const res = await fetchWorker(`${BASE}/scep?operation=PKIOperation`, { method: 'POST', body });
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/^Bad SCEP request: /);
    }
    expect((await fetchWorker(`${BASE}/scep?operation=Nope`)).status).toBe(400);
    expect((await fetchWorker(`${BASE}/scep/no-such-profile?operation=GetCACaps`)).status).toBe(404);
  });

  it('a poll for an unknown transaction is refused with badCertId', async () => {
    const r = await requester(await enrolledSeat());
    const req = r.build(new Uint8Array(), { messageType: 'CertPoll', transactionId: 'no-such-transaction', subject: 'CN=x' });
    expect(await r.send(req)).toMatchObject({ status: 'failed', failInfo: 'badCertId', message: 'No pending request with transactionID = no-such-transaction' });
  });

  it('3DES and SHA-1 are refused with badAlg on a profile without the legacy switch', async () => {
    const s = await enrolledSeat();
    const r = await requester(s);
    for (const [cipher, digest] of [['des-ede3-cbc', 'sha256'], ['aes-128-cbc', 'sha1']]) {
      // Built below the client's negotiation, which would itself refuse the downgrade.
      const req = r.build(r.csr({ digest }), { cipher, digest, legacy: true });
      expect(await r.send(req, { legacy: true })).toMatchObject({ status: 'failed', failInfo: 'badAlg' });
    }
    // ... and the code survives: a proper request still enrolls.
    await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
  });
});
