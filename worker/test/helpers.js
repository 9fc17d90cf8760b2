// Shared by the Worker tests: the Worker reached through its own fetch, the admin API, and a SCEP client (the
// scepkit package itself, running inside workerd).
import { env, SELF } from 'cloudflare:test';
import * as scep from 'scepkit';

export { scep, env };
export const BASE = 'http://scep.test';
// Unless a test says where a request comes from (CF-Connecting-IP, as Cloudflare sets it), each request comes from
// an address of its own, so that the limit on failed requests per address (src/limits.js) sees no flood in tests
// that are about something else.
const clientNet = crypto.getRandomValues(new Uint16Array(1))[0].toString(16);
let clients = 0;
export const fetchWorker = (url, init) => {
  const request = new Request(url, init);
  if (!request.headers.has('cf-connecting-ip')) request.headers.set('cf-connecting-ip', `2001:db8:${clientNet}:${(clients++ & 0xffff).toString(16)}::1`);
  return SELF.fetch(request);
};

export async function api(method, path, body, { token = env.ADMIN_TOKEN, contentType } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = contentType ?? 'application/json';
  const res = await fetchWorker(`${BASE}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

let counter = 0;
export const unique = (prefix) => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

export function profileBody(name, extra = {}) {
  return {
    name, folder: 'Shared', scep_challenge: { dynamic: { otp_server_url: `${BASE}/api/v1/enrollments` } }, ca_identity_name: 'default',
    subject: 'CN=$USERNAME', algorithm: { rsa: { rsa_nbits: 2048 } }, digest: 'sha256', use_as_digital_signature: true,
    use_for_key_encipherment: true, scep_url: `${BASE}/scep/${name}`, ...extra,
  };
}

/** A profile, a seat and a fresh enrollment code for it. */
export async function enrolledSeat(profileExtra = {}) {
  const profile = unique('p').slice(0, 31);
  const p = await api('POST', '/scep-profiles', profileBody(profile, profileExtra));
  if (p.status !== 201) throw new Error(JSON.stringify(p.json));
  const seat = unique('seat');
  await api('POST', '/seats', { id: seat });
  const e = await api('POST', '/enrollments', { seat_id: seat, profile });
  return { profile, profileId: p.json.id, seat, code: e.json.enrollment_code, enrollmentId: e.json.id, url: `${BASE}/scep/${profile}` };
}

export const enroll = (options) => scep.enroll({ fetch: fetchWorker, pollInterval: 10, ...options });

export async function failureOf(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected a failure');
}

export async function auditFor(seat) {
  return (await api('GET', `/audit-logs?seat_id=${encodeURIComponent(seat)}`)).json.data;
}

/** A requester driven by hand, below the client's negotiation: build any message, send it, read the reply. */
export async function requester(s, { subject = `CN=${s.seat}` } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const key = await scep.generateKey(2048);
  const signer = scep.selfSignedCertificate(key, subject, now - 60, now + 3600, 'sha256', 'signer');
  const caBody = new Uint8Array(await (await fetchWorker(`${s.url}?operation=GetCACert`)).arrayBuffer());
  const csr = (opts = {}) => scep.buildCsr(key, { subject, challenge: s.code, ...opts });
  const build = (content, opts = {}) => scep.buildRequest(content, key, signer, caBody, { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256', ...opts });
  const send = async (req, { get = false, raw, legacy = false, expectedSpki } = {}) => {
    const res = get
      ? await fetchWorker(`${s.url}?operation=PKIOperation&message=${raw ?? scep.encodeMessageParam(req.message)}`)
      : await fetchWorker(`${s.url}?operation=PKIOperation`, { method: 'POST', body: req.message });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    return scep.readCertRep(new Uint8Array(await res.arrayBuffer()), req, key, signer, caBody, expectedSpki, legacy);
  };
  return { key, signer, caBody, csr, build, send };
}
