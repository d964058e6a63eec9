// Registry of secrets a test sent to the bastion (passwords, passphrases,
// private-key body lines). docs/api.md "The checks": they never appear in a response, a log
// line or an audit record. The API client scans every response body against
// this registry; the harness scans the daemon's captured stderr at the end.

export class Secrets {
  constructor() {
    this.values = new Map(); // value -> label
    this.leaks = []; // {where, label}
  }

  add(value, label = 'secret') {
    if (typeof value !== 'string' || value.length < 8) return;
    this.values.set(value, label);
  }

  // Every body line of a PEM / OpenSSH private key (not the BEGIN/END
  // armour nor PEM headers such as Proc-Type / DEK-Info).
  addPrivateKey(pem, label = 'private key') {
    for (const raw of String(pem).split(/\r?\n/)) {
      const line = raw.trim();
      if (line.length < 20) continue;
      if (line.startsWith('-----') || /^[A-Za-z-]+:/.test(line)) continue;
      this.add(line, `${label} body line`);
    }
  }

  // Returns the labels of the secrets found in text.
  find(text) {
    if (!text) return [];
    const s = Buffer.isBuffer(text) ? text.toString('latin1') : String(text);
    const found = [];
    for (const [value, label] of this.values) {
      if (s.includes(value)) found.push(label);
      else {
        // also catch a JSON-escaped copy (matters for passwords with " or \)
        const esc = JSON.stringify(value).slice(1, -1);
        if (esc !== value && s.includes(esc)) found.push(label);
      }
    }
    return found;
  }

  scan(text, where) {
    for (const label of this.find(text)) this.leaks.push({ where, label });
  }
}
