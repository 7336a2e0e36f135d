// The embedded default serves HTTPS with a certificate signed by a private
// certificate authority that labforge creates once in its data directory.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';

export interface TlsMaterial {
  key: string;
  cert: string;
  /** The CA certificate clients must trust, when labforge made its own. */
  caFile?: string;
}

function serial(): string {
  return `01${forge.util.bytesToHex(forge.random.getBytesSync(15))}`;
}

function makeCa(): { key: forge.pki.rsa.PrivateKey; cert: forge.pki.Certificate } {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 10 * 365 * 86400_000);
  const attrs = [
    { name: 'commonName', value: `labforge local CA (${hostname()})` },
    { name: 'organizationName', value: 'labforge' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { key: keys.privateKey, cert };
}

function makeServerCert(ca: { key: forge.pki.rsa.PrivateKey; cert: forge.pki.Certificate }, names: string[]) {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 825 * 86400_000);
  cert.setSubject([{ name: 'commonName', value: names[0] as string }]);
  cert.setIssuer(ca.cert.subject.attributes);
  const altNames = names.map((n) => (/^[0-9.]+$|:/.test(n) ? { type: 7, ip: n } : { type: 2, value: n }));
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { key: forge.pki.privateKeyToPem(keys.privateKey), cert: forge.pki.certificateToPem(cert) };
}

/** Loads the configured certificate, or creates (once) a CA and a server certificate under `<dataDir>/tls`. */
export function ensureTls(dataDir: string, configured: { certFile?: string; keyFile?: string }, listenHost: string): TlsMaterial {
  if (configured.certFile && configured.keyFile) {
    return { cert: readFileSync(configured.certFile, 'utf8'), key: readFileSync(configured.keyFile, 'utf8') };
  }
  const dir = join(dataDir, 'tls');
  const files = { caCert: join(dir, 'ca.pem'), caKey: join(dir, 'ca-key.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let ca: { key: forge.pki.rsa.PrivateKey; cert: forge.pki.Certificate };
  if (existsSync(files.caCert) && existsSync(files.caKey)) {
    ca = { cert: forge.pki.certificateFromPem(readFileSync(files.caCert, 'utf8')), key: forge.pki.privateKeyFromPem(readFileSync(files.caKey, 'utf8')) };
  } else {
    ca = makeCa();
    writeFileSync(files.caKey, forge.pki.privateKeyToPem(ca.key), { mode: 0o600 });
    writeFileSync(files.caCert, forge.pki.certificateToPem(ca.cert), { mode: 0o644 });
  }
  const names = [...new Set(['localhost', hostname(), '127.0.0.1', '::1', ...(listenHost && !['0.0.0.0', '::'].includes(listenHost) ? [listenHost] : [])])];
  // A new listen address needs a certificate that names it.
  const namesFile = join(dir, 'server-names.json');
  const sameNames = existsSync(namesFile) && readFileSync(namesFile, 'utf8') === JSON.stringify(names);
  if (!(existsSync(files.cert) && existsSync(files.key) && sameNames)) {
    const server = makeServerCert(ca, names);
    writeFileSync(files.key, server.key, { mode: 0o600 });
    writeFileSync(files.cert, `${server.cert}${forge.pki.certificateToPem(ca.cert)}`, { mode: 0o644 });
    writeFileSync(namesFile, JSON.stringify(names));
  }
  return { key: readFileSync(files.key, 'utf8'), cert: readFileSync(files.cert, 'utf8'), caFile: files.caCert };
}
