// The CA manager (src/certificate_authority.rs, worker/src/ca.js): CAs made here or imported, keys only wrapped
// under CA_KEK, profiles issuing under the CA they name, a disabled CA refused with the seed's message, and a
// rollover: staged (GetNextCACert), promoted, the old CA still signing the CRL of what it issued.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { api, BASE, enroll, env, failureOf, fetchWorker, profileBody, scep, unique } from './helpers.js';

async function ca(body) {
  const res = await api('POST', '/certificate-authorities', body);
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return res.json;
}

async function seatOn(caName, extra = {}) {
  const profile = unique('cap').slice(0, 31);
  const p = await api('POST', '/scep-profiles', profileBody(profile, { ca_identity_name: caName, ...extra }));
  expect(p.status, JSON.stringify(p.json)).toBe(201);
  const seat = unique('dev');
  await api('POST', '/seats', { id: seat });
  const e = await api('POST', '/enrollments', { seat_id: seat, profile });
  return { profile, seat, code: e.json.enrollment_code, url: `${BASE}/scep/${profile}` };
}

const issuerOf = (der) => new X509Certificate(Buffer.from(der)).issuer;

describe('the CA manager', () => {
  it('the secrets CA is the default CA; a profile must name a CA', async () => {
    const list = (await api('GET', '/certificate-authorities?name=default')).json.data;
    expect(list).toEqual([expect.objectContaining({ name: 'default', role: 'current', origin: 'secrets', enabled: true })]);
    const bad = await api('POST', '/scep-profiles', profileBody(unique('x').slice(0, 31), { ca_identity_name: 'no such CA' }));
    expect(bad.status).toBe(400);
    expect(bad.json._errors[0].details.ca_identity_name).toMatch(/^must name a certificate authority of the CA manager \(.*default/);
  });

  it('a generated CA issues for the profiles that name it, its key only wrapped; disabled, it refuses as the seed says', async () => {
    const name = unique('Issuing');
    const created = await ca({ name, generate: { subject: `CN=${name},O=Example`, key_bits: 2048, validity_days: 365 } });
    expect(created).toMatchObject({ name, role: 'current', origin: 'generated', enabled: true, key_bits: 2048, subject: `CN=${name},O=Example` });
    expect(JSON.stringify(created)).not.toMatch(/PRIVATE KEY|wrapped/);
    const row = await env.DB.prepare('SELECT wrapped_key FROM certificate_authorities WHERE id = ?').bind(created.id).first();
    expect(new Uint8Array(row.wrapped_key).length).toBeGreaterThan(1000); // IV + AES-GCM of a PKCS#8, never the PKCS#8 itself
    expect(new Uint8Array(row.wrapped_key).slice(12, 14)).not.toEqual(new Uint8Array([0x30, 0x82]));

    const s = await seatOn(name);
    const caBody = new Uint8Array(await (await fetchWorker(`${s.url}?operation=GetCACert`)).arrayBuffer());
    expect(scep.parseCaCert(caBody).caSubject).toBe(`CN=${name},O=Example`);
    const { certificate } = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    expect(issuerOf(certificate)).toBe(`CN=${name}\nO=Example`.split('\n').reverse().join('\n'));
    const [cert] = (await api('GET', `/certificates?seat_id=${s.seat}`)).json.data;
    expect((await env.DB.prepare('SELECT ca_id FROM certificates WHERE serial = ?').bind(cert.serial).first()).ca_id).toBe(created.id);

    expect((await api('POST', `/certificate-authorities/${created.id}/disable`)).json.enabled).toBe(false);
    // The profile that just enrolled is cached in the isolate with its CA: the disabled CA is still never used.
    const again = unique('dev');
    await api('POST', '/seats', { id: again });
    const code = (await api('POST', '/enrollments', { seat_id: again, profile: s.profile })).json.enrollment_code;
    const cachedRefusal = await failureOf(enroll({ url: s.url, challenge: code, subject: `CN=${again}` }));
    expect(cachedRefusal.message).toBe('Failed to decrypt a PKCS7 message');
    expect((await api('GET', `/enrollments?seat_id=${again}`)).json.data[0].status).toBe('CREATED');
    const other = await seatOn(name);
    const e = await failureOf(enroll({ url: other.url, challenge: other.code, subject: `CN=${other.seat}` }));
    expect(e.message).toBe('Failed to decrypt a PKCS7 message');
    expect(e.failInfo).toBe('badMessageCheck');
    const [audit] = (await api('GET', `/audit-logs?profile=${other.profile}&status=Failure`)).json.data;
    expect(audit).toMatchObject({ code: 'ca_not_enabled', message: 'Failed to decrypt a PKCS7 message' });
    expect(audit.resolution).toMatch(/^The CA associated to your profile is not enabled for SCEP operations/);
    expect((await api('GET', `/enrollments?seat_id=${other.seat}`)).json.data[0].status).toBe('CREATED');
    expect((await api('POST', `/certificate-authorities/${created.id}/enable`)).json.enabled).toBe(true);
    await enroll({ url: other.url, challenge: other.code, subject: `CN=${other.seat}` });
  });

  it('an imported CA must be a CA and come with its own key', async () => {
    const now = Math.floor(Date.now() / 1000);
    const key = await scep.generateKey(2048);
    const cert = scep.selfSignedCertificate(key, 'CN=Imported CA,O=Example', now - 60, now + 86400 * 400, 'sha256', 'ca');
    const name = unique('Imported');
    const imported = await ca({ name, import: { certificate_pem: scep.certificateToPem(cert), private_key_pem: scep.privateKeyToPem(key) } });
    expect(imported).toMatchObject({ origin: 'imported', subject: 'CN=Imported CA,O=Example' });
    const wrongKey = await api('POST', '/certificate-authorities', { name: unique('w'), import: { certificate_pem: scep.certificateToPem(cert), private_key_pem: scep.privateKeyToPem(await scep.generateKey(2048)) } });
    expect(wrongKey.status).toBe(400);
    expect(wrongKey.json._errors[0].details.import).toBe("the private key is not the certificate's");
    const leaf = scep.selfSignedCertificate(key, 'CN=not a CA', now - 60, now + 86400, 'sha256', 'signer');
    const notCa = await api('POST', '/certificate-authorities', { name: unique('n'), import: { certificate_pem: scep.certificateToPem(leaf), private_key_pem: scep.privateKeyToPem(key) } });
    expect(notCa.json._errors[0].details.import).toMatch(/not a CA's/);
    const badGenerate = await api('POST', '/certificate-authorities', { name: unique('g'), generate: { subject: 'nonsense', key_bits: 1024 } });
    expect(Object.keys(badGenerate.json._errors[0].details)).toEqual(['generate.subject', 'generate.key_bits']);
    expect((await api('POST', '/certificate-authorities', { name, generate: { subject: 'CN=x' } })).status).toBe(409);
  });

  it('rollover: the next CA is staged and served by GetNextCACert, then promoted; the old CA still signs its CRL', async () => {
    const name = unique('Rolling');
    const first = await ca({ name, generate: { subject: `CN=${name} G1`, key_bits: 2048, validity_days: 365 } });
    const s = await seatOn(name);
    const old = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    const staged = await api('POST', `/certificate-authorities/${first.id}/stage-next`, { generate: { subject: `CN=${name} G2`, key_bits: 2048, validity_days: 730 } });
    expect(staged.status, JSON.stringify(staged.json)).toBe(201);
    expect(staged.json).toMatchObject({ name, role: 'next' });
    expect(await (await fetchWorker(`${s.url}?operation=GetCACaps`)).text()).toContain('GetNextCACert');
    const next = await fetchWorker(`${s.url}?operation=GetNextCACert`);
    expect(next.headers.get('content-type')).toBe('application/x-x509-next-ca-cert');
    expect((await api('POST', `/certificate-authorities/${first.id}/stage-next`, { generate: { subject: 'CN=again' } })).status).toBe(409);

    const promoted = await api('POST', `/certificate-authorities/${staged.json.id}/promote`);
    expect(promoted.json).toMatchObject({ role: 'current', subject: `CN=${name} G2` });
    expect((await api('GET', `/certificate-authorities/${first.id}`)).json.role).toBe('retired');
    const again = await seatOn(name);
    const fresh = await enroll({ url: again.url, challenge: again.code, subject: `CN=${again.seat}` });
    expect(issuerOf(fresh.certificate)).toBe(`CN=${name} G2`);
    // The old CA's certificate, revoked, is on the old CA's CRL, signed by the old CA.
    const [oldCert] = (await api('GET', `/certificates?seat_id=${s.seat}`)).json.data;
    await api('POST', `/certificates/${oldCert.serial}/revoke`, { reason: 'superseded' });
    const crl = Buffer.from(await (await fetchWorker(`${BASE}/crl/${first.id}`)).arrayBuffer());
    expect(crl.includes(Buffer.from(`${name} G1`))).toBe(true); // the issuer
    expect(crl.includes(Buffer.from(oldCert.serial, 'hex'))).toBe(true);
    expect((await fetchWorker(`${BASE}/crl/${staged.json.id}`)).status).toBe(200);
    expect(issuerOf(old.certificate)).toBe(`CN=${name} G1`);
  });
});
