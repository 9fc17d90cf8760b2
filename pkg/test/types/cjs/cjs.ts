// A CommonJS TypeScript project (module node16): scepkit is ESM, so it is loaded with import(), typed from the
// Node entry's declarations. (A static `import ... from 'scepkit'` here is TS1479, as for any ESM-only package.)
export async function certificateFor(code: string): Promise<string> {
  const { enroll, ScepError } = await import('scepkit');
  try {
    return (await enroll({ url: 'https://scep.example/scep', subject: 'CN=laptop-42', challenge: code })).certificatePem;
  } catch (e) {
    if (e instanceof ScepError) console.log(e.kind, e.resolution);
    throw e;
  }
}
