// OpenAPI 3 description of the admin API. test/openapi.test.js keeps it true: every route the app serves is
// here, and every path here is served.
import { PROFILE_NAME, SEAT_ID } from './admin.js';

const errors = {
  400: { $ref: '#/components/responses/Error' },
  401: { $ref: '#/components/responses/Error' },
  404: { $ref: '#/components/responses/Error' },
  409: { $ref: '#/components/responses/Error' },
};
const json = (schema) => ({ content: { 'application/json': { schema } } });
const ok = (description, schema, status = 200) => ({ [status]: { description, ...(schema ? json(schema) : {}) }, ...errors });
const list = (ref) => ({ type: 'object', properties: { data: { type: 'array', items: { $ref: ref } } } });
const idParam = (name, description) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const seatId = { type: 'string', maxLength: 128, pattern: SEAT_ID.source };
const profileName = { type: 'string', maxLength: 31, pattern: PROFILE_NAME.source };

export const openapi = {
  openapi: '3.0.3',
  info: { title: 'scepkit admin API', version: '1.0.0', description: 'Profiles, seats, one-time enrollment codes, certificates and the audit log of a scepkit SCEP service.' },
  servers: [{ url: '/api/v1' }],
  security: [{ bearer: [] }],
  paths: {
    '/scep-profiles': {
      get: { summary: 'List SCEP profiles', responses: ok('Profiles', list('#/components/schemas/ScepProfile')) },
      post: { summary: 'Create a SCEP profile', requestBody: { required: true, ...json({ $ref: '#/components/schemas/ScepProfile' }) }, responses: ok('Created', { $ref: '#/components/schemas/ScepProfile' }, 201) },
    },
    '/scep-profiles/{id}': {
      parameters: [idParam('id', 'Profile UUID')],
      get: { summary: 'Read a SCEP profile', responses: ok('Profile', { $ref: '#/components/schemas/ScepProfile' }) },
      put: { summary: 'Replace a SCEP profile', requestBody: { required: true, ...json({ $ref: '#/components/schemas/ScepProfile' }) }, responses: ok('Updated', { $ref: '#/components/schemas/ScepProfile' }) },
      delete: { summary: 'Delete a SCEP profile (409 Reference Not Zero while in use)', responses: { 204: { description: 'Deleted' }, ...errors } },
    },
    '/seats': {
      get: { summary: 'List seats', responses: ok('Seats', list('#/components/schemas/Seat')) },
      post: { summary: 'Create a seat', requestBody: { required: true, ...json({ type: 'object', required: ['id'], properties: { id: seatId } }) }, responses: ok('Created', { $ref: '#/components/schemas/Seat' }, 201) },
    },
    '/seats/bulk': {
      post: {
        summary: 'Create seats from CSV (header seat_id, optional profile); a bad row does not sink the good ones',
        description:
          'RFC 4180 CSV (quoted cells, CRLF, LF or CR line ends, a leading BOM is dropped), Content-Type text/csv. Each row is all or nothing: a row reported as an error created no seat and no code. ' +
          'Cells are not trimmed: a space at either end refuses the row. A stray or unclosed quote refuses the whole upload (400), before any row is written.',
        requestBody: { required: true, content: { 'text/csv': { schema: { type: 'string' } } } },
        responses: ok('Per-row results', { type: 'object', properties: { created: { type: 'integer' }, failed: { type: 'integer' }, results: { type: 'array', items: { type: 'object' } } } }, 201),
      },
    },
    '/enrollments/{id}/mobileconfig': {
      parameters: [idParam('id', 'Enrollment UUID'), { name: 'SCEP-Challenge', in: 'header', required: true, schema: { type: 'string' }, description: 'the enrollment code shown when the enrollment was created (only its MAC is stored)' }],
      get: {
        summary: 'An Apple configuration profile (.mobileconfig) whose com.apple.security.scep payload enrolls a device with this enrollment',
        responses: {
          200: { description: 'XML plist, unsigned', content: { 'application/x-apple-aspen-config': { schema: { type: 'string' } } } },
          ...errors,
          410: { $ref: '#/components/responses/Error' },
        },
      },
    },
    '/enrollments': {
      get: { summary: 'List enrollments (codes are never shown again)', parameters: [{ name: 'seat_id', in: 'query', schema: { type: 'string' } }], responses: ok('Enrollments', list('#/components/schemas/Enrollment')) },
      post: {
        summary: 'Create a one-time enrollment code for a seat and profile',
        requestBody: { required: true, ...json({ type: 'object', required: ['seat_id', 'profile'], properties: { seat_id: seatId, profile: profileName } }) },
        responses: ok('Created; enrollment_code is shown only here', { $ref: '#/components/schemas/NewEnrollment' }, 201),
      },
    },
    '/enrollments/{id}/approve': { parameters: [idParam('id', 'Enrollment UUID')], post: { summary: 'Approve the PENDING request of an enrollment (manual-approval profiles)', responses: ok('Issued', { type: 'object' }) } },
    '/enrollments/{id}/reject': { parameters: [idParam('id', 'Enrollment UUID')], post: { summary: 'Reject the PENDING request of an enrollment', responses: ok('Rejected', { type: 'object' }) } },
    '/transactions/{transaction_id}/approve': {
      parameters: [idParam('transaction_id', 'SCEP transactionID of a PENDING request (a held renewal has no enrollment)')],
      post: { summary: 'Approve a PENDING request by its transaction; body { profile_id?, signer_fingerprint? } when several requests share the transactionID', responses: ok('Issued', { type: 'object' }) },
    },
    '/transactions/{transaction_id}/reject': {
      parameters: [idParam('transaction_id', 'SCEP transactionID of a PENDING request')],
      post: { summary: 'Reject a PENDING request by its transaction', responses: ok('Rejected', { type: 'object' }) },
    },
    '/transactions': { get: { summary: 'List requests waiting for approval', responses: ok('Pending transactions', { type: 'object' }) } },
    '/certificates': { get: { summary: 'List certificates', parameters: [{ name: 'seat_id', in: 'query', schema: { type: 'string' } }], responses: ok('Certificates', list('#/components/schemas/Certificate')) } },
    '/certificates/{serial}/revoke': { parameters: [idParam('serial', 'Serial, hex')], post: { summary: 'Revoke a certificate (it appears on /crl)', responses: ok('Revoked', { type: 'object' }) } },
    '/audit-logs': {
      get: {
        summary: 'Audit log, newest first',
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: ['Success', 'Failure'] } },
          { name: 'seat_id', in: 'query', schema: { type: 'string' } },
          { name: 'since', in: 'query', schema: { type: 'string' }, description: 'Unix seconds or RFC 3339' },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10000, default: 500 } },
        ],
        responses: ok('Entries', list('#/components/schemas/AuditLog')),
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
        properties: {
          id: { type: 'string', readOnly: true },
          name: profileName,
          folder: { type: 'string', maxLength: 64 },
          snippet: { type: 'string', maxLength: 64 },
          device: { type: 'string', maxLength: 64 },
          scep_challenge: { type: 'object', description: 'exactly one of none (""), fixed (string), dynamic ({ otp_server_url, username, password }); fixed and password read back as "********", and sent back so in a PUT they keep the stored secret. A dynamic challenge accepts the seat enrollment codes and, with username and password, the one-time passwords of this service NDES-style page (GET /scep/<name>/mscep_admin/, HTTP Basic with them), which otp_server_url reports unless it names another OTP server' },
          ca_identity_name: { type: 'string' },
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
          webhook: { $ref: '#/components/schemas/Webhook' },
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
      Seat: { type: 'object', properties: { id: { type: 'string' }, created_at: { type: 'integer' } } },
      Enrollment: { type: 'object', properties: { id: { type: 'string' }, seat_id: { type: 'string' }, profile_id: { type: 'string' }, status: { type: 'string', enum: ['CREATED', 'REDEEMED', 'REVOKED'] }, expires_at: { type: 'integer' } } },
      NewEnrollment: { allOf: [{ $ref: '#/components/schemas/Enrollment' }, { type: 'object', properties: { enrollment_code: { type: 'string' }, profile: { type: 'string' } } }] },
      Certificate: { type: 'object', properties: { serial: { type: 'string' }, fingerprint: { type: 'string' }, seat_id: { type: 'string' }, subject: { type: 'string' }, not_before: { type: 'integer' }, not_after: { type: 'integer' }, revoked_at: { type: 'integer', nullable: true }, renewed_by: { type: 'string', nullable: true } } },
      AuditLog: { type: 'object', properties: { id: { type: 'integer' }, time: { type: 'integer' }, profile: { type: 'string' }, seat_id: { type: 'string' }, transaction_id: { type: 'string' }, operation: { type: 'string' }, status: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } } },
    },
  },
};
