// A throw-away Postgres server for the Postgres store's tests and the fleet
// benchmark: Debian's postgresql (scripts/setup installs it) initialised in a
// temporary folder and listening on 127.0.0.1 on a free port, with a
// password (scram-sha-256), as a real one would ask. Root cannot run
// postgres, so as root it runs as the postgres user the package makes. For
// the tests it trades durability for speed (fsync off): nothing in it is
// kept; a benchmark asks for a durable one, to compare like with like.

import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";

const POSTGRES_BIN = "/usr/lib/postgresql/15/bin";
export const CLUSTER_USER = "fleet";
export const CLUSTER_PASSWORD = "cluster-password-0123456789";

export interface PostgresCluster {
  readonly port: number;
  /** postgres://fleet:PASSWORD@127.0.0.1:PORT/NAME */
  url(database: string, password?: string): string;
  /** Makes a new empty database; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Drops a database, closing its connections first. */
  dropDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The command run as the postgres user when this process is root. setpriv
 * execs it, so a signal to the child reaches postgres itself, not a wrapper.
 */
function asServerUser(command: readonly string[]): string[] {
  return process.getuid?.() === 0 ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", ...command] : [...command];
}

async function runToEnd(command: readonly string[]): Promise<void> {
  const child = Bun.spawn([...command], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`Cannot run ${command.join(" ")}: its exit status is ${code}\n${stdout}${stderr}`);
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

/** Runs SQL on the cluster's maintenance database as the cluster's user. */
async function psql(port: number, statement: string): Promise<void> {
  const sql = new SQL(`postgres://${CLUSTER_USER}:${CLUSTER_PASSWORD}@127.0.0.1:${port}/postgres`, { max: 1 });
  try {
    await sql.unsafe(statement);
  } finally {
    await sql.close();
  }
}

/** Waits until the server takes connections, or says what its log says. */
async function untilReady(port: number, server: Bun.Subprocess, log: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`Cannot start Postgres: it exited with status ${server.exitCode}\n${await Bun.file(log).text()}`);
    const ready = Bun.spawnSync([join(POSTGRES_BIN, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", String(port)]);
    if (ready.exitCode === 0) return;
    await Bun.sleep(50);
  }
  throw new Error(`Cannot start Postgres: it did not take connections on port ${port} within 30 s\n${await Bun.file(log).text()}`);
}

/** initdb into a temporary folder and start postgres there; stop() stops it and removes the folder. */
export async function startPostgresCluster(options: { readonly durable?: boolean } = {}): Promise<PostgresCluster> {
  const dir = await mkdtemp(join(tmpdir(), "fleet-postgres-"));
  const data = join(dir, "data");
  const passwordFile = join(dir, "password");
  const log = join(dir, "postgres.log");
  await writeFile(passwordFile, `${CLUSTER_PASSWORD}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    const ids = Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim();
    const group = Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString().trim();
    await chown(dir, Number(ids), Number(group));
    await chown(passwordFile, Number(ids), Number(group));
  }
  await runToEnd(asServerUser([join(POSTGRES_BIN, "initdb"), "-D", data, "-U", CLUSTER_USER, `--pwfile=${passwordFile}`, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]));
  const port = freePort();
  // -k: the Unix socket in the temporary folder, not /var/run/postgresql, which may not exist or be another server's
  const fast = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"];
  const settings = ["-c", "listen_addresses=127.0.0.1", ...(options.durable === true ? [] : fast)];
  const server = Bun.spawn(asServerUser([join(POSTGRES_BIN, "postgres"), "-D", data, "-k", dir, "-p", String(port), ...settings]), {
    stdin: "ignore",
    stdout: Bun.file(log),
    stderr: Bun.file(log),
  });
  try {
    await untilReady(port, server, log);
  } catch (error) {
    server.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const url = (database: string, password = CLUSTER_PASSWORD) => `postgres://${CLUSTER_USER}${password === "" ? "" : `:${password}`}@127.0.0.1:${port}/${database}`;
  return {
    port,
    url,
    createDatabase: async (name) => {
      await psql(port, `CREATE DATABASE "${name}"`);
      return url(name);
    },
    dropDatabase: (name) => psql(port, `DROP DATABASE "${name}" WITH (FORCE)`),
    stop: async () => {
      // SIGQUIT: postgres's immediate shutdown, nothing to keep
      server.kill("SIGQUIT");
      await server.exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
