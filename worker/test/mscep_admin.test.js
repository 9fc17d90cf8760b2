// The NDES-compatible one-time challenge page (src/challenge_page.rs): read as MDMs read it (UTF-16LE with a
// BOM, the password between <B> and </B>), behind HTTP Basic with the profile's dynamic credentials, limited per
// address, each password single use, bound to its profile, stored only as a MAC, and audited both ways.
import { describe, expect, it } from 'vitest';
import { api, auditFor, BASE, enroll, env, failureOf, fetchWorker, profileBody, unique } from './helpers.js';

const USER = 'mdm-service';
const PASSWORD = 'correct horse battery staple';
const basic = (user, password) => `Basic ${btoa(`${user}:${password}`)}`;

async function pageProfile(extra = {}) {
  const name = unique('otp').slice(0, 31);
  const res = await api('POST', '/scep-profiles', profileBody(name, { scep_challenge: { dynamic: { username: USER, password: PASSWORD } }, ...extra }));
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return { name, id: res.json.id, url: `${BASE}/scep/${name}`, page: `${BASE}/scep/${name}/mscep_admin/`, view: res.json };
}

const visit = (page, { authorization = basic(USER, PASSWORD), accept, from } = {}) =>
  fetchWorker(page, { headers: { ...(authorization ? { authorization } : {}), ...(accept ? { accept } : {}), ...(from ? { 'cf-connecting-ip': from } : {}) } });

/** What an MDM does with the page: decode UTF-16 and take the password between <B> and </B>. */
async function scrape(res) {
  const bytes = new Uint8Array(await res.arrayBuffer());
  expect([...bytes.slice(0, 2)]).toEqual([0xff, 0xfe]);
  const html = new TextDecoder('utf-16le').decode(bytes.slice(2));
  return { html, password: /The enrollment challenge password is: <B> ([0-9A-F]{16}) <\/B>/.exec(html)?.[1] };
}

async function seat(id) {
  expect((await api('POST', '/seats', { id })).status).toBe(201);
  return id;
}

describe('the one-time challenge page', () => {
  it('serves NDES\'s page in UTF-16LE to the profile\'s credentials; the password enrolls its seat once', async () => {
    const p = await pageProfile();
    expect(p.view.scep_challenge.dynamic).toEqual({ otp_server_url: p.page, username: USER, password: '********' });
    const res = await visit(p.page);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type').toLowerCase()).toBe('text/html; charset=utf-16');
    expect(res.headers.get('cache-control')).toBe('no-store, no-transform');
    const { html, password } = await scrape(res);
    expect(password).toMatch(/^[0-9A-F]{16}$/);
    expect(html).toContain('The thumbprint (hash value) for the CA certificate is: <B> ');
    expect(html).toContain('This password can be used only once and will expire within 60 minutes.');

    const id = await seat(unique('dev'));
    const { certificate } = await enroll({ url: p.url, challenge: password, subject: `CN=${id}` });
    expect(certificate).toBeInstanceOf(Uint8Array);
    const again = await failureOf(enroll({ url: p.url, challenge: password, subject: `CN=${id}` }));
    expect(again.message).toMatch(/^Challenge password is invalid - the one-time challenge password [0-9a-f]{16} was used already$/);

    // Stored as a MAC only; the audit log says who fetched it and which enrollment redeemed it.
    const rows = (await env.DB.prepare('SELECT * FROM one_time_passwords WHERE profile_id = ?').bind(p.id).all()).results;
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(password);
    expect(rows[0]).toMatchObject({ seat_id: id, issued_to: expect.stringContaining(`user "${USER}" from 2001:db8:`) });
    const ref = rows[0].mac.slice(0, 16);
    const issued = (await auditFor(id)).find((r) => r.code === 'issued');
    expect(issued.message).toContain(`with one-time challenge password ${ref} (issued to user "${USER}"`);
    const fetched = (await api('GET', '/audit-logs')).json.data.find((r) => r.code === 'challenge_issued' && r.message.includes(ref));
    expect(fetched).toMatchObject({ operation: 'mscep_admin', status: 'Success', profile: p.name });
  });

  it('answers JSON or plain text to scripts that ask, and the default profile at /certsrv/mscep_admin/', async () => {
    const p = await pageProfile({ one_time_passwords: { lifetime_minutes: 5, create_seats: false } });
    const json = await (await visit(p.page, { accept: 'application/json' })).json();
    expect(json).toMatchObject({ challenge_password: expect.stringMatching(/^[0-9A-F]{16}$/), lifetime_minutes: 5, single_use: true, profile: p.name });
    expect(Date.parse(json.expires_at) - Date.now()).toBeLessThanOrEqual(5 * 60_000 + 2000);
    const text = await (await visit(p.page, { accept: 'text/plain' })).text();
    expect(text).toMatch(/^[0-9A-F]{16}\n$/);
    // The default profile (the oldest, or DEFAULT_PROFILE) has no page unless it is dynamic with credentials.
    const fallback = await visit(`${BASE}/certsrv/mscep_admin/`);
    expect([200, 404]).toContain(fallback.status);
  });

  it('asks for Basic credentials, refuses wrong ones, and locks an address out after ten tries', async () => {
    const p = await pageProfile();
    const none = await visit(p.page, { authorization: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm="scepkit one-time challenge: .*", charset="UTF-8"$/);
    const from = `198.51.100.${Math.floor(Math.random() * 200) + 1}`;
    const wrong = await Promise.all(Array.from({ length: 14 }, (_, i) => visit(p.page, { authorization: basic(USER, `guess-${i}`), from })));
    const statuses = wrong.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    // Locked: even the right credentials wait for the window to end, and get no password.
    const locked = await visit(p.page, { from });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not locked out; a bearer token or the wrong user is not a sign-in.
    expect((await visit(p.page)).status).toBe(200);
    expect((await visit(p.page, { authorization: `Bearer ${env.ADMIN_TOKEN}` })).status).toBe(401);
    expect((await visit(p.page, { authorization: basic('someone', PASSWORD) })).status).toBe(401);
    const failures = (await api('GET', '/audit-logs?status=Failure')).json.data.filter((r) => r.profile === p.name);
    expect(failures.filter((r) => r.code === 'page_sign_in_failed').length).toBeGreaterThanOrEqual(10);
    expect(failures.filter((r) => r.code === 'page_locked')).toHaveLength(1);
  });

  it('a password is bound to its profile, expires, and creates its seat only where the profile allows', async () => {
    const a = await pageProfile();
    const b = await pageProfile({ one_time_passwords: { create_seats: true } });
    const { password } = await scrape(await visit(a.page));
    const id = unique('new');
    // At another profile it is no password of that profile.
    const elsewhere = await failureOf(enroll({ url: b.url, challenge: password, subject: `CN=${id}` }));
    expect(elsewhere.message).toMatch(/^Could not find seat with identifier = new-/);
    // Its own profile does not create seats.
    const closed = await failureOf(enroll({ url: a.url, challenge: password, subject: `CN=${id}` }));
    expect(closed.message).toBe(`Could not find seat with identifier = ${id} using subject.common_name as seat id mapping`);
    // A profile that creates seats does, with its own password; the refusals burned nothing.
    const own = await scrape(await visit(b.page));
    await enroll({ url: b.url, challenge: own.password, subject: `CN=${id}` });
    expect((await api('GET', `/seats/${id}`)).status).toBe(200);
    await enroll({ url: a.url, challenge: password, subject: `CN=${await seat(unique('dev'))}` });
    // An expired password is refused, saying so.
    const late = await scrape(await visit(a.page));
    await env.DB.prepare('UPDATE one_time_passwords SET expires_at = 1 WHERE profile_id = ? AND redeemed_at IS NULL').bind(a.id).run();
    const e = await failureOf(enroll({ url: a.url, challenge: late.password, subject: `CN=${await seat(unique('dev'))}` }));
    expect(e.message).toMatch(/the one-time challenge password [0-9a-f]{16} expired at 1970-01-01T00:00:01Z$/);
  });

  it('a password cannot take over an enrolled seat unless fetched for it (?seat=), and rotating the credentials kills the outstanding ones', async () => {
    const p = await pageProfile();
    const id = await seat(unique('dev'));
    const first = await scrape(await visit(p.page));
    await enroll({ url: p.url, challenge: first.password, subject: `CN=${id}` });
    // The seat holds a valid certificate now: a password fetched without a seat does not enroll it again.
    const loose = await scrape(await visit(p.page));
    const e = await failureOf(enroll({ url: p.url, challenge: loose.password, subject: `CN=${id}` }));
    expect(e.message).toBe(`Seat ${id} has a valid certificate: a one-time challenge password fetched without a seat only enrolls seats that have neither`);
    // Fetched for the seat (the MDM re-enrolling that device) it does, and only that seat.
    const bound = await scrape(await visit(`${p.page}?seat=${encodeURIComponent(id)}`));
    const other = await seat(unique('dev'));
    const wrongSeat = await failureOf(enroll({ url: p.url, challenge: bound.password, subject: `CN=${other}` }));
    expect(wrongSeat.message).toMatch(new RegExp(`is for seat ${id}, not ${other}$`));
    await enroll({ url: p.url, challenge: bound.password, subject: `CN=${id}` });
    expect((await visit(`${p.page}?seat=%20bad`)).status).toBe(400);
    // New page credentials: what was fetched under the old ones no longer enrolls.
    const pending = await scrape(await visit(p.page));
    const body = (await api('GET', `/scep-profiles/${p.id}`)).json;
    const rotated = await api('PUT', `/scep-profiles/${p.id}`, { ...body, scep_challenge: { dynamic: { username: USER, password: 'a brand new page password' } } });
    expect(rotated.status, JSON.stringify(rotated.json)).toBe(200);
    const stale = await failureOf(enroll({ url: p.url, challenge: pending.password, subject: `CN=${other}` }));
    expect(stale.message).toMatch(/was fetched with page credentials the profile no longer has$/);
    expect((await visit(p.page)).status).toBe(401);
  });

  it('page credentials are never empty nor short, and credentials meant for another OTP server open no page here', async () => {
    const short = await api('POST', '/scep-profiles', profileBody(unique('s').slice(0, 31), { scep_challenge: { dynamic: { username: USER, password: 'short' } } }));
    expect(short.status).toBe(400);
    expect(short.json._errors[0].details['scep_challenge.dynamic.password']).toMatch(/at least 12 characters/);
    const empty = await api('POST', '/scep-profiles', profileBody(unique('e').slice(0, 31), { scep_challenge: { dynamic: { username: '', password: 'long enough password' } } }));
    expect(empty.json._errors[0].details['scep_challenge.dynamic.username']).toBe('must not be empty');
    const ndes = await pageProfile({ scep_challenge: { dynamic: { otp_server_url: 'https://ndes.example/certsrv/mscep_admin/', username: USER, password: 'x' } } });
    const res = await visit(ndes.page, { authorization: basic(USER, 'x') });
    expect(res.status).toBe(404);
    expect(await res.text()).toMatch(/its one-time challenges come from https:\/\/ndes\.example/);
  });

  it('the password cache: at most max_outstanding unused passwords at once, then 503 until one is used', async () => {
    const p = await pageProfile({ one_time_passwords: { max_outstanding: 2 } });
    const [a] = [await scrape(await visit(p.page)), await scrape(await visit(p.page))];
    const full = await visit(p.page);
    expect(full.status).toBe(503);
    expect(await full.text()).toMatch(/^The password cache is full: profile .* has 2 unused one-time challenge passwords outstanding/);
    const audit = (await api('GET', '/audit-logs?status=Failure')).json.data.find((r) => r.profile === p.name);
    expect(audit).toMatchObject({ operation: 'mscep_admin', code: 'password_cache_full' });
    await enroll({ url: p.url, challenge: a.password, subject: `CN=${await seat(unique('dev'))}` });
    expect((await visit(p.page)).status).toBe(200);
  });

  it('a profile without credentials, or whose webhook owns the challenge, has no page', async () => {
    const plain = unique('nopage').slice(0, 31);
    expect((await api('POST', '/scep-profiles', profileBody(plain))).status).toBe(201);
    const res = await visit(`${BASE}/scep/${plain}/mscep_admin/`);
    expect(res.status).toBe(404);
    expect(await res.text()).toMatch(/has no one-time challenge page/);
    expect((await visit(`${BASE}/scep/no-such-profile/mscep_admin/`)).status).toBe(404);
    const bad = await api('POST', '/scep-profiles', profileBody(unique('x').slice(0, 31), { scep_challenge: { fixed: 'x' }, one_time_passwords: { lifetime_minutes: 0 } }));
    expect(bad.status).toBe(400);
    expect(bad.json._errors[0].details.one_time_passwords).toMatch(/only applies to a dynamic scep_challenge/);
  });
});
