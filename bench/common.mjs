// Shared by bench/bench.mjs and bench/workerd.mjs: medians, timing, and the SCEP load both servers are given.
import * as scep from '../pkg/entry/node.js';

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export async function timeEach(n, f) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f(i);
    out.push(performance.now() - t);
  }
  return out;
}

// One PKCSReq PKIOperation per seat, built before the clock starts. The array also carries readReply(i, reply):
// reply i read as the client would (signature and envelope checked, throws on a bad one), { status: 'issued' | … }.
export async function prebuild(caBody, seatsAndCodes) {
  const keys = [];
  for (let i = 0; i < 8; i++) keys.push(await scep.generateKey(2048));
  const now = Math.floor(Date.now() / 1000);
  const built = seatsAndCodes.map(({ seat, code }, i) => {
    const key = keys[i % keys.length];
    const signer = scep.selfSignedCertificate(key, `CN=${seat}`, now - 60, now + 3600, 'sha256', 'signer');
    const csr = scep.buildCsr(key, { subject: `CN=${seat}`, challenge: code });
    const request = scep.buildRequest(csr, key, signer, caBody, { messageType: 'PKCSReq', cipher: 'aes-128-cbc', digest: 'sha256', transactionId: `bench-${seat}-${i}` });
    return { request, key, signer };
  });
  const messages = built.map((b) => b.request.message);
  messages.readReply = (i, reply) => scep.readCertRep(reply, built[i].request, built[i].key, built[i].signer, caBody, undefined, false);
  return messages;
}

// Sends every message at `concurrency` in flight. With { verify: true } the replies are kept and, after the clock
// stops, each is read as a CertRep (prebuild's readReply): `issued` counts the SUCCESS ones.
export async function load(url, messages, concurrency, { verify = false } = {}) {
  let next = 0;
  let failed = 0;
  const latencies = [];
  const replies = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < messages.length) {
      const i = next++;
      const t = performance.now();
      const res = await fetch(`${url}?operation=PKIOperation`, { method: 'POST', body: messages[i] });
      const body = await res.arrayBuffer();
      latencies.push(performance.now() - t);
      if (res.status !== 200) failed++;
      else if (verify) replies[i] = new Uint8Array(body);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const out = { requests: messages.length, failed, per_second: round(messages.length / seconds, 1), latency_p50_ms: round(median(latencies)) };
  if (verify) out.issued = replies.filter((r, i) => r && messages.readReply(i, r).status === 'issued').length;
  return out;
}
