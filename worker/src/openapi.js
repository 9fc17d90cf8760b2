// OpenAPI 3 description of the admin API, and the rules the API keeps from it: the query parameters each
// operation takes (any other is refused, each value checked against its schema) and the methods each path
// takes (any other is 405). test/admin.test.js keeps it true: every route the app serves is here, every path
// here is served, and the answers match the schemas.
import * as scep from 'scepkit/server';

// The core's seat id rule (names::check_seat_id), and a profile name's (src/profile.rs): a path segment of
// /scep/<name>, so no `/`, `?`, `#` and no `..`.
const SEAT_ID_RULE = scep.seatIdRule();
export const SEAT_ID = new RegExp(SEAT_ID_RULE.pattern);
export const SEAT_ID_WORDS = SEAT_ID_RULE.rule;
export const PROFILE_NAME = /^(?!.*\.\.)[A-Za-z0-9._\-](?:[A-Za-z0-9._\- ]*[A-Za-z0-9._\-])?$/;

const errors = {
  400: { $ref: '#/components/responses/Error' },
  401: { $ref: '#/components/responses/Error' },
  404: { $ref: '#/components/responses/Error' },
  405: { $ref: '#/components/responses/Error' },
  409: { $ref: '#/components/responses/Error' },
};
const json = (schema) => ({ content: { 'application/json': { schema } } });
const ok = (description, schema, status = 200) => ({ [status]: { description, ...(schema ? json(schema) : {}) }, ...errors });
const ref = (name) => ({ $ref: `#/components/schemas/${name}` });
const page = (item) => ({
  type: 'object', required: ['data', 'next_cursor'], additionalProperties: false,
  properties: { data: { type: 'array', items: ref(item) }, next_cursor: { type: 'string', nullable: true, description: 'pass as cursor for the next page; null on the last' } },
});
const idParam = (name, description) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const seatId = { type: 'string', maxLength: 128, pattern: SEAT_ID.source };
const profileName = { type: 'string', maxLength: 31, pattern: PROFILE_NAME.source };
const query = (name, schema, description) => ({ name, in: 'query', required: false, schema, ...(description ? { description } : {}) });
// Every list pages by a cursor: `limit` rows (default 100), then `next_cursor` names where the next page starts.
const paging = [
  query('limit', { type: 'integer', minimum: 1, maximum: 10000, default: 100 }),
  query('cursor', { type: 'string', maxLength: 1024 }, 'next_cursor of the page before'),
];
const time = { type: 'string', maxLength: 40, format: 'unix-seconds-or-rfc3339' };

export const openapi = {
  openapi: '3.0.3',
  info: { title: 'scepkit admin API', version: '1.1.0', license: { name: 'MIT OR Apache-2.0', url: 'https://spdx.org/licenses/' }, description: 'Profiles, seats, one-time enrollment codes, held requests, certificates and the audit log of a scepkit SCEP service. Lists page by cursor; a query parameter an operation does not document is refused (400 E003), a method a path does not take is 405 E013.' },
  servers: [{ url: '/api/v1' }],
  security: [{ bearer: [] }],
  paths: {
    '/scep-profiles': {
      get: { operationId: 'listProfiles', summary: 'List SCEP profiles, by name', parameters: [...paging, query('name', profileName)], responses: ok('Profiles', page('ScepProfile')) },
      post: {
        operationId: 'createProfile', summary: 'Create a SCEP profile', requestBody: { required: true, ...json(ref('ScepProfile')) }, responses: ok('Created', ref('ScepProfile'), 201),
        // The profile's webhook is called by every enrollment on it (src/webhook.rs).
        callbacks: {
          enrollmentWebhook: {
            '{$request.body#/webhook/url}': {
              post: {
                summary: 'Asked before each enrollment and renewal on the profile; signed in X-Scepkit-Signature',
                requestBody: { required: true, ...json(ref('WebhookRequest')) },
                responses: {
                  200: { description: 'The decision (any 2xx)', ...json(ref('WebhookAnswer')) },
                  400: { description: 'Any other status, a redirect, or no answer in timeout_ms refuses the enrollment (fail closed)' },
                },
              },
            },
          },
        },
      },
    },
    '/scep-profiles/{id}': {
      parameters: [idParam('id', 'Profile UUID')],
      get: { operationId: 'getProfile', summary: 'Read a SCEP profile', responses: ok('Profile', ref('ScepProfile')) },
      put: { operationId: 'replaceProfile', summary: 'Replace a SCEP profile', requestBody: { required: true, ...json(ref('ScepProfile')) }, responses: ok('Updated', ref('ScepProfile')) },
      delete: { operationId: 'deleteProfile', summary: 'Delete a SCEP profile (409 E009 Reference Not Zero while in use)', responses: { 204: { description: 'Deleted' }, ...errors } },
    },
    '/seats': {
      get: { operationId: 'listSeats', summary: 'List seats, by id', parameters: [...paging, query('prefix', { type: 'string', maxLength: 128 }, 'seats whose id starts with it')], responses: ok('Seats', page('Seat')) },
      post: { operationId: 'createSeat', summary: 'Create a seat (a deleted seat of that id comes back)', requestBody: { required: true, ...json({ type: 'object', required: ['id'], additionalProperties: false, properties: { id: seatId } }) }, responses: ok('Created', ref('Seat'), 201) },
    },
    '/seats/{id}': {
      parameters: [idParam('id', 'Seat id')],
      get: { operationId: 'getSeat', summary: 'Read a seat, with how many certificates and open codes it has', responses: ok('Seat', ref('SeatDetails')) },
      delete: { operationId: 'deleteSeat', summary: 'Delete a seat: refused (409 E009 Reference Not Zero) while it has a certificate that is neither revoked nor expired; its open codes are revoked, its old certificates stay in the CRL', responses: { 204: { description: 'Deleted' }, ...errors } },
    },
    '/seats/bulk': {
      post: {
        operationId: 'createSeatsFromCsv',
        summary: 'Create seats from CSV (header seat_id, optional profile); a bad row does not sink the good ones',
        description:
          'RFC 4180 CSV (quoted cells, CRLF, LF or CR line ends, a leading BOM is dropped), Content-Type text/csv. Each row is all or nothing: a row reported as an error created no seat and no code. ' +
          'Cells are not trimmed: a space at either end refuses the row. A stray or unclosed quote refuses the whole upload (400), before any row is written.',
        requestBody: { required: true, content: { 'text/csv': { schema: { type: 'string' } } } },
        responses: ok('Per-row results', { type: 'object', properties: { created: { type: 'integer' }, failed: { type: 'integer' }, results: { type: 'array', items: { type: 'object' } } } }, 201),
      },
    },
    '/enrollments': {
      get: {
        operationId: 'listEnrollments', summary: 'List enrollments, oldest first (codes are never shown again)',
        parameters: [...paging, query('seat_id', { type: 'string', maxLength: 128 }), query('profile', profileName), query('status', { type: 'string', enum: ['CREATED', 'REDEEMED', 'REVOKED'] })],
        responses: ok('Enrollments', page('Enrollment')),
      },
      post: {
        operationId: 'createEnrollment', summary: 'Create a one-time enrollment code for a seat and profile (the seat\'s open code of that profile is revoked)',
        description: 'For a profile whose upstream CA hands out one-time passwords (upstream.challenge dynamic, RA mode), the code is a password fetched from the upstream\'s page now; when the page gives none, nothing is created (502).',
        requestBody: { required: true, ...json({ type: 'object', required: ['seat_id', 'profile'], additionalProperties: false, properties: { seat_id: seatId, profile: profileName } }) },
        responses: { ...ok('Created; enrollment_code is shown only here', ref('NewEnrollment'), 201), 502: { $ref: '#/components/responses/Error' } },
      },
    },
    '/enrollments/{id}': {
      parameters: [idParam('id', 'Enrollment UUID')],
      get: { operationId: 'getEnrollment', summary: 'Read an enrollment', responses: ok('Enrollment', ref('Enrollment')) },
      delete: { operationId: 'revokeEnrollment', summary: 'Revoke an unused code (CREATED → REVOKED; the record stays); 409 once it is redeemed or revoked', responses: ok('Revoked', ref('Enrollment')) },
    },
    '/enrollments/{id}/mobileconfig': {
      parameters: [idParam('id', 'Enrollment UUID'), { name: 'SCEP-Challenge', in: 'header', required: true, schema: { type: 'string' }, description: 'the enrollment code shown when the enrollment was created (only its MAC is stored)' }],
      get: {
        operationId: 'getEnrollmentMobileconfig',
        summary: 'An Apple configuration profile (.mobileconfig) whose com.apple.security.scep payload enrolls a device with this enrollment',
        responses: {
          200: { description: 'XML plist, unsigned', content: { 'application/x-apple-aspen-config': { schema: { type: 'string' } } } },
          ...errors,
          410: { $ref: '#/components/responses/Error' },
        },
      },
    },
    '/enrollments/{id}/approve': { parameters: [idParam('id', 'Enrollment UUID')], post: { operationId: 'approveEnrollment', summary: 'Approve the PENDING request of an enrollment (manual-approval profiles; a request that waits for an upstream CA is refused: it is decided there)', responses: ok('Issued', ref('Decision')) } },
    '/enrollments/{id}/reject': {
      parameters: [idParam('id', 'Enrollment UUID')],
      post: {
        operationId: 'rejectEnrollment', summary: 'Reject the PENDING request of an enrollment; the reason is what its next poll is told (a request that waits for an upstream CA is refused)',
        requestBody: { required: false, ...json({ type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 200 } } }) },
        responses: ok('Rejected', ref('Decision')),
      },
    },
    '/transactions': {
      get: {
        operationId: 'listTransactions', summary: 'List SCEP transactions, oldest first, with what each requests (the approvals: status=PENDING)',
        parameters: [...paging, query('status', { type: 'string', enum: ['PENDING', 'ISSUED', 'REJECTED'] }), query('profile', profileName), query('seat_id', { type: 'string', maxLength: 128 })],
        responses: ok('Transactions', page('Transaction')),
      },
    },
    '/transactions/{transaction_id}/approve': {
      parameters: [idParam('transaction_id', 'SCEP transactionID of a PENDING request (a held renewal has no enrollment)')],
      post: {
        operationId: 'approveTransaction', summary: 'Approve a PENDING request by its transaction; profile_id and signer_fingerprint tell apart requests that share the transactionID (a request that waits for an upstream CA is refused)',
        requestBody: { required: false, ...json({ type: 'object', additionalProperties: false, properties: { profile_id: { type: 'string' }, signer_fingerprint: { type: 'string' } } }) },
        responses: ok('Issued', ref('Decision')),
      },
    },
    '/transactions/{transaction_id}/reject': {
      parameters: [idParam('transaction_id', 'SCEP transactionID of a PENDING request')],
      post: {
        operationId: 'rejectTransaction', summary: 'Reject a PENDING request by its transaction; the reason is what its next poll is told (a request that waits for an upstream CA is refused)',
        requestBody: { required: false, ...json({ type: 'object', additionalProperties: false, properties: { profile_id: { type: 'string' }, signer_fingerprint: { type: 'string' }, reason: { type: 'string', maxLength: 200 } } }) },
        responses: ok('Rejected', ref('Decision')),
      },
    },
    '/certificates': {
      get: {
        operationId: 'listCertificates', summary: 'List certificates, oldest first',
        parameters: [
          ...paging, query('seat_id', { type: 'string', maxLength: 128 }), query('serial', { type: 'string', maxLength: 64, pattern: '^[0-9A-Fa-f]+$' }),
          query('subject', { type: 'string', maxLength: 256 }, 'a part of the subject, any case'), query('profile', profileName),
          query('status', { type: 'string', enum: ['active', 'revoked', 'expired', 'renewed'] }),
        ],
        responses: ok('Certificates', page('Certificate')),
      },
    },
    '/certificates/{serial}': {
      parameters: [idParam('serial', 'Serial, hex')],
      get: {
        operationId: 'getCertificate', summary: 'Read a certificate: JSON with its PEM, or with Accept application/pkix-cert the DER, application/x-pem-file the PEM',
        responses: {
          200: { description: 'The certificate', content: { 'application/json': { schema: ref('CertificateDetails') }, 'application/pkix-cert': { schema: { type: 'string', format: 'binary' } }, 'application/x-pem-file': { schema: { type: 'string' } } } },
          ...errors,
        },
      },
      delete: { operationId: 'deleteCertificate', summary: 'Revoke a certificate (the record stays, and it appears on /crl; an upstream CA\'s certificate is revoked here only, see Revocation.propagated); body { reason? }', responses: ok('Revoked', ref('Revocation')) },
    },
    '/certificates/{serial}/revoke': {
      parameters: [idParam('serial', 'Serial, hex')],
      post: { operationId: 'revokeCertificate', summary: 'Revoke a certificate with a reason (RFC 5280 CRLReason, in its CRL entry); body { reason? }', requestBody: { required: false, ...json(ref('RevocationRequest')) }, responses: ok('Revoked', ref('Revocation')) },
    },
    '/certificate-authorities': {
      get: {
        operationId: 'listCertificateAuthorities', summary: 'List the issuing CAs (the secrets\' CA is CA_NAME, default "default")',
        parameters: [...paging, query('name', { type: 'string', maxLength: 64 }), query('role', { type: 'string', enum: ['current', 'next', 'retired'] })],
        responses: ok('CAs', page('CertificateAuthority')),
      },
      post: {
        operationId: 'createCertificateAuthority', summary: 'Create an issuing CA: generated here (RSA 2048/3072/4096) or imported (PEM certificate and key); its key is kept only wrapped under CA_KEK and never read back',
        requestBody: { required: true, ...json(ref('NewCertificateAuthority')) },
        responses: { ...ok('Created', ref('CertificateAuthority'), 201), 503: { $ref: '#/components/responses/Error' } },
      },
    },
    '/certificate-authorities/{id}': {
      parameters: [idParam('id', 'CA id')],
      get: { operationId: 'getCertificateAuthority', summary: 'Read a CA (its certificate, never its key)', responses: ok('CA', ref('CertificateAuthority')) },
    },
    '/certificate-authorities/{id}/enable': { parameters: [idParam('id', 'CA id')], post: { operationId: 'enableCertificateAuthority', summary: 'Enable the CA for SCEP operations', responses: ok('CA', ref('CertificateAuthority')) } },
    '/certificate-authorities/{id}/disable': {
      parameters: [idParam('id', 'CA id')],
      post: { operationId: 'disableCertificateAuthority', summary: 'Disable the CA for SCEP: a PKIOperation on its profiles is answered "Failed to decrypt a PKCS7 message" (the CA associated to the profile is not enabled)', responses: ok('CA', ref('CertificateAuthority')) },
    },
    '/certificate-authorities/{id}/stage-next': {
      parameters: [idParam('id', 'The current CA')],
      post: {
        operationId: 'stageNextCertificateAuthority', summary: 'Stage the next CA of this one\'s name (rollover): GetNextCACert serves it, signed by the current one (RFC 8894 §3.5.2)',
        requestBody: { required: true, ...json({ type: 'object', additionalProperties: false, properties: { generate: ref('GenerateCertificateAuthority'), import: ref('ImportCertificateAuthority') } }) },
        responses: { ...ok('Staged', ref('CertificateAuthority'), 201), 503: { $ref: '#/components/responses/Error' } },
      },
    },
    '/certificate-authorities/{id}/promote': {
      parameters: [idParam('id', 'The staged next CA')],
      post: { operationId: 'promoteCertificateAuthority', summary: 'Promote the staged next CA: it issues from now on; the previous one retires and still signs the CRL of what it issued (/crl/{id})', responses: ok('The new current CA', ref('CertificateAuthority')) },
    },
    '/audit-logs': {
      get: {
        operationId: 'listAuditLogs', summary: 'Audit log, newest first',
        parameters: [
          ...paging, query('status', { type: 'string', enum: ['Success', 'Failure'] }), query('seat_id', { type: 'string', maxLength: 128 }), query('profile', profileName),
          query('operation', { type: 'string', maxLength: 64 }), query('code', { type: 'string', maxLength: 64 }),
          query('since', time, 'Unix seconds or RFC 3339, inclusive'), query('until', time, 'Unix seconds or RFC 3339, inclusive'),
        ],
        responses: {
          200: {
            description: 'Entries; with Accept text/csv the page as CSV (the next page\'s cursor in X-Next-Cursor), for export before the daily prune',
            content: { 'application/json': { schema: page('AuditLog') }, 'text/csv': { schema: { type: 'string' } } },
          },
          ...errors,
        },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    responses: {
      Error: {
        description: 'The error envelope',
        content: {
          'application/json': {
            schema: {
              type: 'object',
              properties: {
                _errors: { type: 'array', items: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' }, help: { type: 'string' } } } },
                _request_id: { type: 'string' },
              },
            },
          },
        },
      },
    },
    schemas: {
      ScepProfile: {
        type: 'object',
        required: ['name', 'scep_challenge', 'ca_identity_name', 'algorithm', 'digest', 'scep_url'],
        // Exactly one container.
        oneOf: [{ required: ['folder'] }, { required: ['snippet'] }, { required: ['device'] }],
        properties: {
          id: { type: 'string', readOnly: true },
          name: profileName,
          folder: { type: 'string', maxLength: 64, pattern: '^[a-zA-Z\\d\\-_\\. ]+$' },
          snippet: { type: 'string', maxLength: 64, pattern: '^[a-zA-Z\\d\\-_\\. ]+$' },
          device: { type: 'string', maxLength: 64, pattern: '^[a-zA-Z\\d\\-_\\. ]+$' },
          scep_challenge: {
            type: 'object', minProperties: 1, maxProperties: 1, additionalProperties: false,
            description: 'exactly one of none (""), fixed, dynamic. The secrets (fixed, dynamic.password) read back as "********", and sent back so in a PUT keep the stored one. A dynamic challenge accepts the seat enrollment codes and, with username and password, the one-time passwords of this service NDES-style page (GET /scep/<name>/mscep_admin/, HTTP Basic with them), which otp_server_url reports unless it names another OTP server',
            properties: {
              none: { type: 'string', enum: [''] },
              fixed: { type: 'string', minLength: 1, maxLength: 1024 },
              dynamic: {
                type: 'object', additionalProperties: false,
                properties: {
                  otp_server_url: { type: 'string', maxLength: 255 },
                  username: { type: 'string', minLength: 1, maxLength: 255, description: 'with password, or neither' },
                  password: { type: 'string', minLength: 1, maxLength: 255, description: 'at least 12 characters when otp_server_url names no other server (it opens this service page)' },
                },
              },
            },
          },
          ca_identity_name: { type: 'string', description: 'the name of a certificate authority of the CA manager (GET /certificate-authorities); the Worker\'s secrets CA is CA_NAME, default "default"' },
          subject: { type: 'string', default: 'CN=$USERNAME' },
          algorithm: { type: 'object', properties: { rsa: { type: 'object', properties: { rsa_nbits: { oneOf: [{ type: 'integer' }, { type: 'string' }] } } } } },
          digest: { type: 'string', enum: ['sha1', 'sha256', 'sha384', 'sha348', 'sha512'] },
          fingerprint: { type: 'string' },
          certificate_attributes: { type: 'object' },
          use_as_digital_signature: { type: 'boolean' },
          use_for_key_encipherment: { type: 'boolean' },
          scep_url: { type: 'string' },
          scep_ca_cert: { type: 'string' },
          scep_client_cert: { type: 'string' },
          renewal_window_days: { type: 'integer', default: 30 },
          validity_days: { type: 'integer', default: 365 },
          manual_approval: { type: 'boolean', default: false },
          legacy: { type: 'boolean', default: false },
          seat_id_mapping: { type: 'string', default: 'subject.common_name' },
          csr_names: { type: 'string', enum: ['match', 'replace'], default: 'match' },
          oaep_only: { type: 'boolean', default: false },
          webhook: ref('Webhook'),
          upstream: ref('Upstream'),
          one_time_passwords: {
            type: 'object', additionalProperties: false, description: 'dynamic scep_challenge only: the one-time passwords of the challenge page',
            properties: {
              lifetime_minutes: { type: 'integer', minimum: 1, maximum: 1440, default: 60 },
              max_outstanding: { type: 'integer', minimum: 1, maximum: 100000, default: 1000, description: 'unused, unexpired passwords at once (NDES password cache); the page answers 503 past it' },
              create_seats: { type: 'boolean', default: false, description: 'a password creates the seat the CSR names on first use (else the seat must exist)' },
            },
          },
        },
        // Any other field is refused (400 E003, its path in details).
        additionalProperties: false,
      },
      Webhook: {
        type: 'object',
        description: 'A service that must allow each enrollment. challenge: it receives the CSR challengePassword and decides it (the profile challenge is not checked); approve: after every check of the CA, it must allow too. It is sent a WebhookRequest and must answer a WebhookAnswer; anything else refuses (fail closed). secret reads back as "********" and, sent back so, keeps the stored one.',
        required: ['url', 'secret', 'mode'],
        additionalProperties: false,
        properties: {
          url: { type: 'string', maxLength: 2048, description: 'https URL without credentials (plain http only to loopback, for tests)' },
          secret: { type: 'string', minLength: 16, maxLength: 256, writeOnly: true },
          timeout_ms: { type: 'integer', minimum: 100, maximum: 30000, default: 5000 },
          mode: { type: 'string', enum: ['challenge', 'approve'] },
        },
      },
      Upstream: {
        type: 'object',
        description:
          'RA mode: an existing SCEP CA (NDES in front of AD CS, micromdm, …) issues this profile\'s certificates after every check of this service (seat, one-time code, webhook, names, renewal rules, audit). ' +
          'The device\'s CSR is sent unchanged in a new PKIMessage signed by this service\'s RA (the RA_CERT/RA_KEY secrets, so ca_identity_name must name the CA of the Worker\'s secrets, CA_NAME, default "default") and enveloped to the upstream once its GetCACert matched fingerprint. ' +
          'With an upstream: csr_names must be match; manual_approval must be false (a PENDING of the upstream is relayed to the device); challenge fixed needs scep_challenge { "fixed": … }, the shared secret the upstream checks; challenge dynamic needs scep_challenge { "dynamic": {} } (each enrollment code is a one-time password fetched from the upstream\'s page). ' +
          'challenge.dynamic.password reads back as "********" and, sent back so, keeps the stored one.',
        required: ['scep_url', 'fingerprint'],
        additionalProperties: false,
        properties: {
          scep_url: { type: 'string', maxLength: 2048, description: 'the upstream\'s SCEP URL: http or https (SCEP protects its messages itself), with a host and no credentials, e.g. http://ndes.corp.example/certsrv/mscep/mscep.dll' },
          fingerprint: { type: 'string', description: 'the upstream CA certificate\'s SHA-256 (64 hex digits) or SHA-1 (40), colons allowed: nothing is sent to a CA that does not match' },
          challenge: {
            description: 'what the upstream checks in the CSR\'s challengePassword, which the edge cannot change (the device signed the CSR): none, it trusts the RA\'s signature; fixed, one shared secret (the profile\'s scep_challenge.fixed); dynamic, one-time passwords of its page (NDES mscep_admin), fetched when an enrollment is created',
            default: 'none',
            oneOf: [
              { type: 'string', enum: ['none', 'fixed'] },
              {
                type: 'object', required: ['dynamic'], additionalProperties: false,
                properties: {
                  dynamic: {
                    type: 'object', required: ['otp_server_url', 'username', 'password'], additionalProperties: false,
                    properties: {
                      otp_server_url: { type: 'string', description: 'the upstream\'s one-time password page, e.g. https://ndes.corp.example/certsrv/mscep_admin/: https (plain http only to loopback), HTTP Basic with username and password' },
                      username: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^:]*$', description: 'an account allowed to enroll with the upstream\'s template' },
                      password: { type: 'string', minLength: 1, maxLength: 256, writeOnly: true, description: 'reads back as "********"; sent back so, keeps the stored one' },
                    },
                  },
                },
              },
            ],
          },
          cipher: { type: 'string', enum: ['aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc', 'des-ede3-cbc'], description: 'pins the cipher of requests to the upstream (des-ede3-cbc only with legacy); else the strongest its GetCACaps offers' },
          digest: { type: 'string', enum: ['sha1', 'sha256', 'sha384', 'sha512'], description: 'pins the digest of requests to the upstream (sha1 only with legacy); else the strongest its GetCACaps offers' },
          legacy: { type: 'boolean', default: false, description: 'allows 3DES and SHA-1 and reading single-DES replies (micromdm\'s) on the edge-upstream leg only; what devices may use is the profile\'s own legacy' },
          timeout_ms: { type: 'integer', minimum: 1000, maximum: 60000, default: 20000, description: 'for each request to the upstream; past it the device is answered FAILURE and nothing is used' },
        },
      },
      WebhookRequest: {
        type: 'object',
        description: 'POSTed to Webhook.url as application/json, with the header X-Scepkit-Signature: t=<timestamp>,v1=<hex HMAC-SHA-256 under the secret of "<timestamp>.<raw body>">. Check the signature over the raw body and refuse a timestamp more than 300 s from your clock.',
        properties: {
          version: { type: 'integer', enum: [1] },
          mode: { type: 'string', enum: ['challenge', 'approve'] },
          profile: { type: 'string' },
          seat_id: { type: 'string' },
          transaction_id: { type: 'string' },
          message_type: { type: 'string', enum: ['PKCSReq', 'RenewalReq'] },
          subject: { type: 'string', description: 'RFC 4514, exactly as it will be issued' },
          sans: { type: 'array', items: { type: 'string' }, description: 'dns:…, email:…, uri:…, as they will be issued' },
          key: { type: 'object', properties: { type: { type: 'string', enum: ['rsa'] }, bits: { type: 'integer' } } },
          client_address: { type: 'string', nullable: true },
          renews: { type: 'string', nullable: true, description: 'serial of the certificate a renewal replaces' },
          challenge: { type: 'string', description: 'challenge mode only: the CSR challengePassword' },
          timestamp: { type: 'integer', description: 'Unix seconds, as in the signature header' },
        },
      },
      WebhookAnswer: {
        type: 'object',
        description: 'The answer, with any 2xx status: only allow: true allows. A deny reason becomes the FAILURE failInfoText and the audit message.',
        required: ['allow'],
        properties: { allow: { type: 'boolean' }, reason: { type: 'string', maxLength: 200 } },
      },
      Seat: { type: 'object', required: ['id', 'created_at'], additionalProperties: false, properties: { id: { type: 'string' }, created_at: { type: 'integer' } } },
      SeatDetails: {
        type: 'object', required: ['id', 'created_at', 'active_certificates', 'certificates', 'open_enrollments'], additionalProperties: false,
        properties: {
          id: { type: 'string' }, created_at: { type: 'integer' },
          active_certificates: { type: 'integer', description: 'neither revoked nor expired: while there is one the seat cannot be deleted' },
          certificates: { type: 'integer' }, open_enrollments: { type: 'integer' },
        },
      },
      Enrollment: {
        type: 'object', required: ['id', 'seat_id', 'profile_id', 'profile', 'status', 'expires_at', 'created_at'], additionalProperties: false,
        properties: {
          id: { type: 'string' }, seat_id: { type: 'string' }, profile_id: { type: 'string' }, profile: { type: 'string' },
          status: { type: 'string', enum: ['CREATED', 'REDEEMED', 'REVOKED'] }, expires_at: { type: 'integer' }, created_at: { type: 'integer' },
          redeemed_at: { type: 'integer', nullable: true }, transaction_id: { type: 'string', nullable: true },
        },
      },
      NewEnrollment: {
        type: 'object', required: ['id', 'seat_id', 'profile_id', 'profile', 'status', 'expires_at', 'created_at', 'enrollment_code'], additionalProperties: false,
        properties: {
          id: { type: 'string' }, seat_id: { type: 'string' }, profile_id: { type: 'string' }, profile: { type: 'string' }, status: { type: 'string', enum: ['CREATED'] },
          expires_at: { type: 'integer' }, created_at: { type: 'integer' }, enrollment_code: { type: 'string', description: 'shown only here; the store keeps its MAC' },
        },
      },
      Transaction: {
        type: 'object', required: ['profile_id', 'profile', 'transaction_id', 'signer_fingerprint', 'message_type', 'status', 'created_at'], additionalProperties: false,
        properties: {
          profile_id: { type: 'string' }, profile: { type: 'string' }, transaction_id: { type: 'string' }, signer_fingerprint: { type: 'string' },
          seat_id: { type: 'string', nullable: true }, message_type: { type: 'string' }, status: { type: 'string', enum: ['PENDING', 'ISSUED', 'REJECTED'] },
          enrollment_id: { type: 'string', nullable: true }, renews: { type: 'string', nullable: true }, certificate_serial: { type: 'string', nullable: true },
          client_address: { type: 'string', nullable: true, description: 'where the request came from' },
          upstream: { type: 'string', nullable: true, description: 'RA mode: the SCEP URL of the upstream CA the request was forwarded to (null: decided here); a PENDING one waits for that CA and is not approved or rejected here' },
          requested: {
            type: 'object', nullable: true, description: 'what the certificate would be: the names the profile renders for the seat, the key, the validity',
            properties: { subject: { type: 'string' }, sans: { type: 'array', items: { type: 'string' } }, key: { type: 'object', properties: { type: { type: 'string' }, bits: { type: 'integer' } } }, not_before: { type: 'integer' }, not_after: { type: 'integer' } },
          },
          created_at: { type: 'integer' }, updated_at: { type: 'integer' },
        },
      },
      Decision: { type: 'object', required: ['transaction_id', 'status'], properties: { transaction_id: { type: 'string' }, status: { type: 'string', enum: ['ISSUED', 'REJECTED'] }, serial: { type: 'string' } } },
      Certificate: {
        type: 'object', required: ['serial', 'fingerprint', 'seat_id', 'profile_id', 'subject', 'not_before', 'not_after', 'status', 'created_at'], additionalProperties: false,
        properties: {
          serial: { type: 'string' }, fingerprint: { type: 'string', description: 'SHA-256 of the DER, hex' }, seat_id: { type: 'string' }, profile_id: { type: 'string' },
          profile: { type: 'string', nullable: true }, subject: { type: 'string' }, not_before: { type: 'integer' }, not_after: { type: 'integer' },
          status: { type: 'string', enum: ['active', 'revoked', 'expired'] }, revoked_at: { type: 'integer', nullable: true },
          revocation_reason: { type: 'string', nullable: true }, renewed_by: { type: 'string', nullable: true }, transaction_id: { type: 'string' }, created_at: { type: 'integer' },
          upstream: { type: 'string', nullable: true, description: 'RA mode: the SCEP URL of the upstream CA that issued it (null: issued by a CA of this service); such a certificate is not on this service\'s CRL, and revoking it here does not revoke it there' },
        },
      },
      get CertificateDetails() {
        const certificate = this.Certificate;
        return { ...certificate, required: [...certificate.required, 'pem'], properties: { ...certificate.properties, pem: { type: 'string' } } };
      },
      RevocationRequest: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', enum: scep.revocationReasons(), default: 'unspecified' } } },
      Revocation: {
        type: 'object', required: ['serial', 'revoked', 'reason'],
        properties: {
          serial: { type: 'string' }, revoked: { type: 'boolean' }, reason: { type: 'string' },
          propagated: { type: 'boolean', description: 'only for an upstream CA\'s certificate (RA mode): false, SCEP has no revocation message, so it is revoked at this service only; revoke it at the upstream CA too' },
          note: { type: 'string', description: 'with propagated: what was and was not revoked (the audit row says the same)' },
        },
      },
      CertificateAuthority: {
        type: 'object', required: ['id', 'name', 'role', 'enabled', 'origin', 'subject', 'fingerprint', 'key_bits', 'not_before', 'not_after', 'created_at', 'certificate_pem'], additionalProperties: false,
        properties: {
          id: { type: 'string' }, name: { type: 'string', description: 'what profiles name in ca_identity_name' }, role: { type: 'string', enum: ['current', 'next', 'retired'] },
          enabled: { type: 'boolean', description: 'enabled for SCEP operations' }, origin: { type: 'string', enum: ['secrets', 'generated', 'imported'] },
          subject: { type: 'string' }, fingerprint: { type: 'string', description: 'SHA-256 of the certificate, hex' }, key_bits: { type: 'integer' },
          not_before: { type: 'integer' }, not_after: { type: 'integer' }, created_at: { type: 'integer' }, promoted_at: { type: 'integer', nullable: true },
          certificate_pem: { type: 'string' },
        },
      },
      GenerateCertificateAuthority: {
        type: 'object', required: ['subject'], additionalProperties: false,
        properties: { subject: { type: 'string', description: 'RFC 4514, e.g. CN=Example Issuing CA,O=Example' }, key_bits: { type: 'integer', enum: [2048, 3072, 4096], default: 3072 }, validity_days: { type: 'integer', minimum: 30, maximum: 7300, default: 3650 } },
      },
      ImportCertificateAuthority: {
        type: 'object', required: ['certificate_pem', 'private_key_pem'], additionalProperties: false,
        properties: { certificate_pem: { type: 'string', description: 'a CA certificate (basicConstraints cA, RSA)' }, private_key_pem: { type: 'string', writeOnly: true, description: 'its key, PKCS#8 or PKCS#1 PEM' } },
      },
      NewCertificateAuthority: {
        type: 'object', required: ['name'], additionalProperties: false,
        properties: { name: { type: 'string', maxLength: 64 }, generate: ref('GenerateCertificateAuthority'), import: ref('ImportCertificateAuthority') },
      },
      AuditLog: {
        type: 'object', required: ['id', 'time', 'operation', 'status'], additionalProperties: false,
        properties: {
          id: { type: 'integer' }, time: { type: 'integer' }, profile: { type: 'string', nullable: true }, seat_id: { type: 'string', nullable: true },
          transaction_id: { type: 'string', nullable: true }, operation: { type: 'string' }, status: { type: 'string', enum: ['Success', 'Failure'] },
          code: { type: 'string', nullable: true }, message: { type: 'string', nullable: true },
          resolution: { type: 'string', nullable: true, description: 'what to do about a failure (its error\'s resolution)' },
        },
      },
    },
  },
};

// The documented operation of `method` on `path` (under /api/v1), or, with no method, the methods the path takes.
// Literal paths first: /seats/bulk is not the seat "bulk".
const templates = Object.keys(openapi.paths)
  .map((template) => ({ template, params: (template.match(/\{/g) ?? []).length, pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`) }))
  .sort((a, b) => a.params - b.params);

export function documented(path) {
  const found = templates.find(({ pattern }) => pattern.test(path));
  return found && openapi.paths[found.template];
}

export const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
