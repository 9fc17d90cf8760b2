// RFC 4180 text of `records`, shared by the Worker's audit export and the console's code export. A cell a
// spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading apostrophe: audit messages quote
// what requesters sent.
export function csv(records) {
  const cell = (v) => {
    let text = v == null ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return records.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}
