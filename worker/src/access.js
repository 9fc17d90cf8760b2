// Cloudflare Access in front of the console and the admin API: when ACCESS_TEAM_DOMAIN
// (https://<team>.cloudflareaccess.com) and ACCESS_AUD (the Access application's audience tag) are set, a request
// that carries Access's JWT (Cf-Access-Jwt-Assertion) is let in on it alone: RS256, signed by a key of the team's
// JWKS (/cdn-cgi/access/certs, kept per isolate for 10 minutes and read again for an unknown key id), issued by
// the team, for this application, unexpired. Its identity (email, or a service token's common_name) is who acted.
// A request without it still needs the admin token (scripts, make run).
const JWKS_TTL_MS = 10 * 60_000;
const SKEW = 60;
const jwks = new Map(); // team → { keys, at }

const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

/** The team's origin: https, or plain http to loopback (tests). */
function teamOrigin(env) {
  const url = new URL(env.ACCESS_TEAM_DOMAIN);
  const loopback = url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !loopback) throw new Error('ACCESS_TEAM_DOMAIN must be https://<team>.cloudflareaccess.com');
  return url.origin;
}

async function keysOf(team, kid) {
  const kept = jwks.get(team);
  if (kept && Date.now() - kept.at < JWKS_TTL_MS && kept.keys.some((k) => k.kid === kid)) return kept.keys;
  const res = await fetch(`${team}/cdn-cgi/access/certs`, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`the Access team's keys: HTTP ${res.status}`);
  const { keys } = await res.json();
  jwks.set(team, { keys, at: Date.now() });
  return keys;
}

export const accessConfigured = (env) => Boolean(env.ACCESS_TEAM_DOMAIN && env.ACCESS_AUD);

/** Who an Access JWT says is asking, or why it is not one (a message for the 401). */
export async function accessIdentity(env, token, now = Math.floor(Date.now() / 1000)) {
  const parts = token.split('.');
  if (parts.length !== 3) return { error: 'not a JWT' };
  let header, claims;
  try {
    [header, claims] = [decode(parts[0]), decode(parts[1])];
  } catch {
    return { error: 'not a JWT' };
  }
  if (header.alg !== 'RS256') return { error: `alg ${header.alg} is not RS256` };
  const team = teamOrigin(env);
  let keys;
  try {
    keys = await keysOf(team, header.kid);
  } catch (e) {
    console.error('Cloudflare Access keys', e);
    return { error: `the Access team's keys could not be read (${e.message})` };
  }
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) return { error: 'signed by a key the Access team does not have' };
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']);
  const signed = await crypto.subtle.verify('RSASSA-PKCS1-v1_5', key, Buffer.from(parts[2], 'base64url'), new TextEncoder().encode(`${parts[0]}.${parts[1]}`));
  if (!signed) return { error: 'bad signature' };
  const audiences = [claims.aud].flat();
  if (claims.iss !== team) return { error: `issued by ${claims.iss}, not ${team}` };
  if (!audiences.includes(env.ACCESS_AUD)) return { error: 'for another Access application' };
  if (typeof claims.exp !== 'number' || claims.exp + SKEW < now) return { error: 'expired' };
  if (typeof claims.nbf === 'number' && claims.nbf - SKEW > now) return { error: 'not valid yet' };
  const who = claims.email ?? claims.common_name ?? claims.sub;
  return who ? { identity: String(who) } : { error: 'names nobody' };
}
