/**
 * Certificates for the protocol test server's TLS listener, as a secure EventStoreDB/KurrentDB node uses
 * them: a private CA (what es-gencert-cli `create-ca` makes) and a node certificate it signs for 127.0.0.1
 * and localhost (`create-node -ip-addresses 127.0.0.1 -dns-names localhost`). Made with the openssl CLI
 * once per process, in a temporary directory removed at exit; clients trust the CA through `tlsCAFile`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  /** The directory holding them (ca.crt, node.crt, node.key). */
  dir: string;
  /** The CA certificate's path: what `tlsCAFile` names. */
  caFile: string;
  ca: Buffer;
  nodeCert: Buffer;
  nodeKey: Buffer;
}

let made: TestCertificates | undefined;

/** The process's test certificates, made on first use (a few openssl calls, some tens of ms). */
export function testCertificates(): TestCertificates {
  if (made) return made;
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-esdb-tls-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // EC keys: quick to make, and TLS 1.3 in Node takes them.
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', path('ca.key'));
  // prettier-ignore
  openssl(
    'req', '-x509', '-new', '-key', path('ca.key'), '-sha256', '-days', '2',
    '-subj', '/CN=snapcat test CA', '-out', path('ca.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  );
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', path('node.key'));
  openssl(
    'req',
    '-new',
    '-key',
    path('node.key'),
    '-subj',
    '/CN=eventstoredb-node',
    '-out',
    path('node.csr'),
  );
  writeFileSync(
    path('node.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ].join('\n'),
  );
  // prettier-ignore
  openssl(
    'x509', '-req', '-in', path('node.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'),
    '-CAcreateserial', '-sha256', '-days', '2', '-extfile', path('node.ext'), '-out', path('node.crt'),
  );
  made = {
    dir,
    caFile: path('ca.crt'),
    ca: readFileSync(path('ca.crt')),
    nodeCert: readFileSync(path('node.crt')),
    nodeKey: readFileSync(path('node.key')),
  };
  return made;
}
