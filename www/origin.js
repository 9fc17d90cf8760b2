// One rule for what counts as a SCEP server's origin, shared by the page (www/app.js) and the Worker that
// reads PAGE_ALLOWED_SERVERS for it (worker/src/page.js).

/** `text` as an origin (http(s)://host[:port], nothing else: no path, query, fragment or userinfo), or null. */
export function asOrigin(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  const bare = !url.username && !url.password && url.pathname === '/' && !url.search && !url.hash;
  // A host of letters, digits, dots and hyphens (IDNs arrive as punycode) or an IPv6 literal: the URL parser
  // accepts '*', ';' or ',' in a host, which a CSP would read as a wildcard or a new directive.
  const plainHost = /^([a-z0-9-]+(\.[a-z0-9-]+)*\.?|\[[0-9a-f:.]+\])$/.test(url.hostname);
  return (url.protocol === 'https:' || url.protocol === 'http:') && bare && plainHost ? url.origin : null;
}
