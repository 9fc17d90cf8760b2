// Seeds a running local Worker through its own admin API: the demo profile (once), a demo seat (once) and a
// fresh one-time enrollment code for it (every run: codes are shown only when created). Prints how to use them.
const [base, token] = [process.argv[2], process.argv[3]];
const seat = process.env.DEMO_SEAT ?? 'demo-laptop';
const api = async (method, path, body) => {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = res.status === 204 ? null : await res.json();
  return { status: res.status, json };
};

const profiles = await api('GET', '/scep-profiles');
if (profiles.status !== 200) throw new Error(`admin API: ${JSON.stringify(profiles.json)}`);
if (!profiles.json.data.some((p) => p.name === 'default')) {
  const r = await api('POST', '/scep-profiles', {
    name: 'default', folder: 'Shared', scep_challenge: { dynamic: { otp_server_url: `${base}/api/v1/enrollments` } },
    ca_identity_name: 'default', subject: 'CN=$USERNAME', algorithm: { rsa: { rsa_nbits: 2048 } }, digest: 'sha256',
    use_as_digital_signature: true, use_for_key_encipherment: true, scep_url: `${base}/scep`,
  });
  if (r.status !== 201) throw new Error(`creating the demo profile: ${JSON.stringify(r.json)}`);
}
const s = await api('POST', '/seats', { id: seat });
if (![201, 409].includes(s.status)) throw new Error(`creating the demo seat: ${JSON.stringify(s.json)}`);
const e = await api('POST', '/enrollments', { seat_id: seat, profile: 'default' });
if (e.status !== 201) throw new Error(`creating the enrollment: ${JSON.stringify(e.json)}`);

// The CA's SHA-256 fingerprint, for clients that pin it (--fingerprint), as the CA manager reports it.
const cas = await api('GET', '/certificate-authorities?role=current');
const ca = cas.json?.data?.find((c) => c.name === 'default');
const out = `./enrolled/${seat}`;

console.log(`
scepkit is running at ${base}
  enrollment page   ${base}/            (a person enrolls a device here with a seat id and a code)
  SCEP URL          ${base}/scep        (profile "default"; ${base}/scep/<profile> for the others)
  CA fingerprint    ${ca?.fingerprint ?? '(see GET /api/v1/certificate-authorities)'}   (SHA-256, for --fingerprint)
  admin console     ${base}/admin/      (sign in with the admin token below)
  admin API         ${base}/api/v1      (Authorization: Bearer ${token})
  OpenAPI           ${base}/api/v1/openapi.json
  demo seat id      ${seat}            (the seat id is the CSR's CN by default)
  enrollment code   ${e.json.enrollment_code}   (one-time, expires ${new Date(e.json.expires_at * 1000).toISOString()})

Enroll from a shell (the files land in ${out}, which git ignores):
  echo ${e.json.enrollment_code} | node pkg/cli.js enroll --url ${base}/scep --challenge-file - --subject "CN=${seat}" \\
    --fingerprint ${ca?.fingerprint ?? '<CA fingerprint>'} --out ${out}

A new seat and a code for it (profile "default"):
  curl -s -H "Authorization: Bearer ${token}" -H "content-type: application/json" -d '{"id":"laptop-42"}' ${base}/api/v1/seats
  curl -s -H "Authorization: Bearer ${token}" -H "content-type: application/json" -d '{"seat_id":"laptop-42","profile":"default"}' ${base}/api/v1/enrollments
`);
