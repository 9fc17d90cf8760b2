import * as server from 'scepkit/server';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { api, auditFor, BASE, enroll, enrolledSeat, env, failureOf, fetchWorker, scep } from './helpers.js';

describe('SCEP endpoint', () => {
  it('runs on the CA side of the package only (scepkit/server): no client, no key generation, no PKCS#12', () => {
    for (const name of ['PkiOperation', 'ServerIdentity', 'FailureLimit', 'decideHeld', 'toDer']) expect(server[name], name).toBeTypeOf('function');
    for (const name of ['enroll', 'buildRequest', 'readCertRep', 'generateKeyWasm', 'exportPkcs12', 'inspect']) expect(server[name], name).toBeUndefined();
  });

  it('GetCACaps advertises the RFC keywords and never DES (GetNextCACert: a next CA is configured here)', async () => {
    const { url } = await enrolledSeat();
    const text = await (await fetchWorker(`${url}?operation=GetCACaps`)).text();
    expect(text.split('\n').sort()).toEqual(['AES', 'GetNextCACert', 'POSTPKIOperation', 'Renewal', 'SCEPStandard', 'SHA-256', 'SHA-512'].sort());
    const legacy = await enrolledSeat({ legacy: true });
    expect((await (await fetchWorker(`${legacy.url}?operation=GetCACaps`)).text()).split('\n')).toEqual(expect.arrayContaining(['DES3', 'SHA-1']));
  });

  it('runs on no RSA of its own: the wasm of scepkit/server has no pure-Rust key (fromPkcs8) nor RA setup', () => {
    expect(server.ServerKey.fromPkcs8).toBeUndefined();
    expect(server.raCertificate).toBeUndefined();
    expect(server.ServerKey.fromCallbacks).toBeTypeOf('function');
  });

  it('a SCEP GET reads its profile, CA and next CA in one round trip, choosing them as the PKIOperation does', async () => {
    const store = new Store(env.DB);
    const { profile } = await enrolledSeat();
    const named = await store.profileAndCa(profile, 'default');
    expect(named.profile.name).toBe(profile);
    expect(named.ca.id).toBe((await store.caByName(named.profile.body.ca_identity_name)).id);
    // Without a name: DEFAULT_PROFILE if it exists, else the oldest profile.
    expect((await store.profileAndCa(undefined, profile)).profile.name).toBe(profile);
    const oldest = await store.defaultProfile(undefined);
    expect((await store.profileAndCa(undefined, 'no-such-profile')).profile.name).toBe(oldest.name);
    expect((await store.profileAndCa('no-such-profile', 'default')).profile).toBeNull();
  });

  it('GetNextCACert: the next CA in a SignedData signed by the current RA', async () => {
    const res = await fetchWorker(`${BASE}/scep?operation=GetNextCACert`);
    expect(res.headers.get('content-type')).toBe('application/x-x509-next-ca-cert');
    const info = scep.inspect(new Uint8Array(await res.arrayBuffer()));
    expect(info.signatureValid).toBe(true);
    expect(info.signer.subject).toBe('CN=scepkit test RA,O=scepkit');
    expect(info.content.certificates.map((c) => c.subject)).toEqual(['CN=scepkit next CA,O=scepkit']);
  });

  it('/cgi-bin/pkiclient.exe serves the default profile, for clients that hard-code the NDES path', async () => {
    const res = await fetchWorker(`${BASE}/cgi-bin/pkiclient.exe?operation=GetCACaps`);
    expect(res.status).toBe(200);
    expect((await res.text()).split('\n')).toContain('SCEPStandard');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('GetCACert returns CA + RA as a degenerate PKCS#7 with the right content type', async () => {
    const res = await fetchWorker(`${BASE}/scep?operation=GetCACert`);
    expect(res.headers.get('content-type')).toBe('application/x-x509-ca-ra-cert');
    const ca = scep.parseCaCert(new Uint8Array(await res.arrayBuffer()));
    expect(ca.caSubject).toBe('CN=scepkit test CA,O=scepkit');
    expect(ca.all).toHaveLength(2);
  });

  it('a seat with a fresh code enrolls; the certificate chains to the CA and is recorded', async () => {
    const s = await enrolledSeat();
    const result = await enroll({ url: s.url, challenge: s.code, subject: `CN=${s.seat}` });
    const cert = scep.inspect(result.certificate);
    expect(cert.subject).toBe(`CN=${s.seat}`);
    expect(cert.issuer).toBe('CN=scepkit test CA,O=scepkit');
    const certs = (await api('GET', `/certificates?seat_id=${s.seat}`)).json.data;
    expect(certs.map((c) => c.serial)).toEqual([cert.serial]);
    const audit = await auditFor(s.seat);
    expect(audit[0]).toMatchObject({ status: 'Success', code: 'issued', profile: s.profile, operation: 'PKCSReq' });
  });
});
