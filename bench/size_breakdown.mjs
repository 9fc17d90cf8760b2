// Where the bytes of a wasm build go, by crate: twiggy's items of the build as it ships (the build cargo made, kept by
// scripts/build-wasm.sh under target/wasm-builds, put through wasm-bindgen again here with its function names
// kept), grouped by the crate that owns each function. The name section itself is left out, so the shares are of
// the code and data that ship.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DROPPED = /^"function names" subsection$|^custom section '(producers|target_features)'$/;

/** The crate an item belongs to: the first crate path in its (demangled) name; data and the rest apart. */
function crateOf(name) {
  if (/^data\[\d+\]$|^data segment/.test(name)) return '(data: strings, tables)';
  // `core[c593…]::fmt`, `<T as base64ct::Encoding>::encode`, `<der::asn1::Any as der::Decode>::…`
  const m = name.match(/([a-z_][a-z0-9_]*)(?:\[[0-9a-f]+\])?::/);
  if (m) return m[1] === 'scepkit' ? 'scepkit (this crate)' : m[1];
  return '(other: glue, tables, imports)';
}

export function sizeBreakdown(root, build, top = 12) {
  const twiggy = join(root, '.tools/bin/twiggy');
  const out = mkdtempSync(join(tmpdir(), 'scepkit-size-'));
  let csv;
  try {
    execFileSync(join(root, '.tools/bin/wasm-bindgen'), ['--target', 'web', '--out-dir', out, '--out-name', 'b', join(root, 'target/wasm-builds', `${build}.wasm`)]);
    csv = execFileSync(twiggy, ['top', '-n', '1000000', '--format', 'csv', join(out, 'b_bg.wasm')], { encoding: 'utf8', maxBuffer: 256 << 20 });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  const bytes = new Map();
  let total = 0;
  for (const line of csv.split('\n').slice(1)) {
    // Name,ShallowSize,...: the name is quoted when it holds commas.
    const m = line.match(/^(?:"((?:[^"]|"")*)"|([^,]*)),(\d+),/);
    if (!m) continue;
    const name = (m[1] ?? m[2]).replace(/""/g, '"');
    if (DROPPED.test(name)) continue;
    const size = Number(m[3]);
    total += size;
    const crate = crateOf(name);
    bytes.set(crate, (bytes.get(crate) ?? 0) + size);
  }
  const rows = [...bytes].sort((a, b) => b[1] - a[1]);
  const shown = rows.slice(0, top).map(([crate, n]) => ({ crate, bytes: n, share: Math.round((1000 * n) / total) / 10 }));
  const rest = rows.slice(top).reduce((n, [, b]) => n + b, 0);
  return { total_bytes: total, by_crate: [...shown, { crate: `(${rows.length - top} more)`, bytes: rest, share: Math.round((1000 * rest) / total) / 10 }] };
}
