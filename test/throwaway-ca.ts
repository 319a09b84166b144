// A throw-away certificate authority made with openssl, for the tests that
// speak https to a server on 127.0.0.1: the CA, a server certificate for
// 127.0.0.1 it signed, and another CA that signed nothing of it.

import { join } from "node:path";

export interface ThrowawayCa {
  /** the CA's certificate, PEM */
  readonly caFile: string;
  /** the server's certificate and key for 127.0.0.1, PEM */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** a CA that did not sign the server's certificate, PEM */
  readonly otherCaFile: string;
}

async function openssl(...args: string[]): Promise<void> {
  const child = Bun.spawn(["openssl", ...args], { stdout: "ignore", stderr: "pipe" });
  if ((await child.exited) !== 0) throw new Error(`openssl ${args.join(" ")}: ${await new Response(child.stderr).text()}`);
}

/** Makes the CA's files in `dir` (which must exist); valid for 2 days. */
export async function makeThrowawayCa(dir: string): Promise<ThrowawayCa> {
  const file = (name: string) => join(dir, name);
  await openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA", "-keyout", file("ca.key"), "-out", file("ca.pem"));
  await openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", file("server.key"), "-out", file("server.csr"));
  await Bun.write(file("ext.cnf"), "subjectAltName=IP:127.0.0.1\n");
  await openssl("x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", file("ext.cnf"), "-out", file("server.pem"));
  await openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA", "-keyout", file("other.key"), "-out", file("other.pem"));
  return { caFile: file("ca.pem"), serverCertFile: file("server.pem"), serverKeyFile: file("server.key"), otherCaFile: file("other.pem") };
}
