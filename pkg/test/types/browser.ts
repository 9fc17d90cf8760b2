// The browser entry's declarations: the client, typed from the Rust types; no CA side, and no RSA of its own
// (WebCrypto does it: inspect is async there, and the synchronous helpers that sign with a key at hand are Node's).
import { enroll, exportPkcs12, inspect, privateKeyToPem, ScepError } from 'scepkit';
// @ts-expect-error the browser build of the core has no CA side
import { PkiOperation } from 'scepkit';
// @ts-expect-error nor the synchronous helpers that do RSA in the wasm
import { buildCsr } from 'scepkit';

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

export function download(key: Uint8Array, certificate: Uint8Array): [Uint8Array, string] {
  return [exportPkcs12(key, [certificate], 'secret', 'laptop-42'), privateKeyToPem(key)];
}

void PkiOperation;
void buildCsr;

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
export async function subjectOf(pem: string): Promise<string | undefined> {
  const found = await inspect(pem);
  // @ts-expect-error not every kind has a subject: narrow by type first
  void found.subject;
  return found.type === 'Certificate' ? found.subject : found.type === 'CSR' ? found.subject : undefined;
}
