// The NDES-compatible one-time challenge page (GET /certsrv/mscep_admin/ for the default profile,
// GET /scep/<profile>/mscep_admin/): the core's ChallengePage decides every step (src/challenge_page.rs); this
// file only counts the attempt, runs the writes and sends the answer.
import * as scep from 'scepkit/server';
import { caOfProfile, identityOf } from './ca.js';
import { Store } from './store.js';

const now = () => Math.floor(Date.now() / 1000);

export async function challengePage(c, profileName) {
  const store = new Store(c.env.DB);
  const profile = profileName ? await store.profileByName(profileName) : await store.defaultProfile(c.env.DEFAULT_PROFILE);
  if (!profile) return c.text(profileName ? `No SCEP profile named ${profileName}` : 'No SCEP profile is configured', 404, { 'cache-control': 'no-store' });
  const t = now();
  const request = {
    authorization: c.req.header('authorization'), accept: c.req.header('accept'), clientAddress: c.req.header('cf-connecting-ip'),
    origin: new URL(c.req.url).origin, seat: c.req.query('seat'),
  };
  const issuer = await identityOf(c.env, await caOfProfile(c.env, store, profile.body));
  const page = new scep.ChallengePage({ ...profile, cached: false }, issuer, request, c.env.CODE_KEY, t);
  try {
    let step = page.step;
    // Bounded: count, then at most one write.
    for (let i = 0; i < 4 && step.step !== 'answer'; i++) {
      try {
        if (step.step === 'countAttempt') step = page.withAttempts(...(await store.countPageAttempt(step.attempt, t)));
        else if (step.step === 'write') step = page.written(await store.write(step.writes));
        else throw new Error(`unexpected step ${step.step}`);
      } catch (e) {
        // The store failed: a batch is all or nothing, and no password is shown that is not stored.
        console.error('challenge page failed', e);
        step = page.hostFailed();
      }
    }
    if (step.audit) await store.audit(step.audit);
    return new Response(step.body, { status: step.status, headers: step.headers });
  } finally {
    page.free();
  }
}
