// The browser entry's declarations: the client, typed from the Rust types; no CA side.
import { buildCsr, csrFacts, enroll, inspect, ScepError } from 'scepkit';
// @ts-expect-error the browser build of the core has no CA side
import { PkiOperation } from 'scepkit';

export async function enrollLaptop(code: string): Promise<Uint8Array> {
  try {
    const result = await enroll({ url: 'https://scep.example/scep', subject: 'CN=laptop-42', challenge: code, sans: ['dns:laptop-42.example'] });
    return result.certificate;
  } catch (e) {
    if (e instanceof ScepError && e.kind === 'refused') console.log(e.failInfo, e.failInfoCode, e.resolution, e.transactionId);
    if (e instanceof ScepError && e.kind === 'http') console.log(e.http?.status);
    throw e;
  }
}

export function facts(key: Uint8Array): number {
  const csr = buildCsr(key, { subject: 'CN=x', sans: [], challenge: 'c' });
  const f = csrFacts(csr);
  // @ts-expect-error CsrFacts has keyBits (camelCase), not key_bits
  f.key_bits;
  return f.keyBits;
}

void PkiOperation;

// Through a bundler: init() with the URL it serves the wasm at, then the same functions.
import * as manual from 'scepkit/manual';
export async function bundled(wasmUrl: string): Promise<string> {
  await manual.init({ wasmUrl });
  // @ts-expect-error init takes a URL or a module, not a number
  await manual.init({ wasmUrl: 42 });
  manual.checkEnrollOptions({ url: 'https://scep.example/scep', subject: 'CN=x' });
  return (await manual.enroll({ url: 'https://scep.example/scep', subject: 'CN=x', challenge: 'c' })).certificatePem;
}

// inspect takes bytes or PEM text; its result is a union tagged by `type`.
export function subjectOf(pem: string): string | undefined {
  const found = inspect(pem);
  // @ts-expect-error not every kind has a subject: narrow by type first
  void found.subject;
  return found.type === 'Certificate' ? found.subject : found.type === 'CSR' ? found.subject : undefined;
}
