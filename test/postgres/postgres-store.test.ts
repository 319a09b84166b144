// The fleet's reports in Postgres (fleet/postgres-store.ts), against a
// throw-away server of Debian's postgresql (test/postgres-cluster.ts): what
// every store does (test/fleet-store-contract.ts), each test in a database
// of its own, and what only Postgres has: its schema version table, a
// database of other tables, two servers starting at once, and connection
// errors that name the URL without its password.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { openPostgresStore } from "../../controller/fleet/postgres-store.ts";
import { CLUSTER_PASSWORD, type PostgresCluster, startPostgresCluster } from "../postgres-cluster.ts";
import { describeFleetStore } from "../fleet-store-contract.ts";
import { envelope, MACHINE_ID } from "../fleet-envelopes.ts";

let cluster: PostgresCluster;
let databases = 0;

beforeAll(async () => {
  const began = performance.now();
  cluster = await startPostgresCluster();
  process.stderr.write(`the throw-away Postgres cluster started in ${Math.round(performance.now() - began)} ms\n`);
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

/** Runs statements on one database, behind the store's back. */
async function onDatabase(name: string, statements: string): Promise<void> {
  const sql = new SQL(cluster.url(name), { max: 1 });
  try {
    await sql.unsafe(statements);
  } finally {
    await sql.close();
  }
}

async function freshDatabase(): Promise<{ name: string; url: string }> {
  databases += 1;
  const name = `fleet_${databases}`;
  return { name, url: await cluster.createDatabase(name) };
}

describeFleetStore("openPostgresStore", async () => {
  const { name, url } = await freshDatabase();
  return {
    store: await openPostgresStore(url),
    reopen: () => openPostgresStore(url),
    refuseReports: () =>
      onDatabase(
        name,
        `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON reports FOR EACH ROW EXECUTE FUNCTION refuse();`,
      ),
    remove: () => cluster.dropDatabase(name),
  };
});

describe("openPostgresStore's own database", () => {
  test("made on first start: its tables and schema version 2 in fleet_schema", async () => {
    const { name, url } = await freshDatabase();
    const store = await openPostgresStore(url);
    await store.close();
    const sql = new SQL(cluster.url(name), { max: 1 });
    const tables = await sql`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`;
    const versions = await sql`SELECT version FROM fleet_schema`;
    await sql.close();
    expect(tables.map((row: { tablename: string }) => row.tablename)).toEqual(["fleet_schema", "machines", "reports"]);
    expect([...versions]).toEqual([{ version: 2 }]);
  });

  test("a database of another schema version is refused with its URL, without the password, and both versions", async () => {
    const { name, url } = await freshDatabase();
    await (await openPostgresStore(url)).close();
    await onDatabase(name, "UPDATE fleet_schema SET version = 7");
    const error = await openPostgresStore(url).catch((caught: Error) => caught);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(`Cannot open the fleet database ${cluster.url(name, "")}: its schema is version 7, expected 2 (this controller's); it was made by another controller`);
    expect((error as Error).message).not.toContain(CLUSTER_PASSWORD);
  });

  test("a database whose tables are another program's is refused, not written into", async () => {
    const { name, url } = await freshDatabase();
    await onDatabase(name, "CREATE TABLE machines (id integer)");
    await expect(openPostgresStore(url)).rejects.toThrow(`Cannot open the fleet database ${cluster.url(name, "")}: `);
    await expect(openPostgresStore(url)).rejects.toThrow('"machines" already exists');
  });

  test("two servers started at once on a new database: the schema made once, both work", async () => {
    const { url } = await freshDatabase();
    const [first, second] = await Promise.all([openPostgresStore(url), openPostgresStore(url)]);
    await first.add(envelope(), "2026-12-06T10:00:06.000Z");
    expect((await second.machine(MACHINE_ID))?.machine.reports).toBe(1);
    await Promise.all([first.close(), second.close()]);
  });

  test("a wrong password: an error naming the URL without the password", async () => {
    const { name } = await freshDatabase();
    const error = await openPostgresStore(cluster.url(name, "wrong-password")).catch((caught: Error) => caught);
    expect((error as Error).message).toBe(
      `Cannot connect to the fleet database ${cluster.url(name, "")}: expected a Postgres server there that lets its user into its database, got: password authentication failed for user "fleet"`,
    );
    expect((error as Error).message).not.toContain("wrong-password");
  });

  test("a database that does not exist, and a port nothing listens on: errors naming the URL", async () => {
    await expect(openPostgresStore(cluster.url("no_such_database"))).rejects.toThrow(
      `Cannot connect to the fleet database ${cluster.url("no_such_database", "")}: expected a Postgres server there that lets its user into its database, got: database "no_such_database" does not exist`,
    );
    const closed = `postgres://fleet:secret@127.0.0.1:1/fleet`;
    await expect(openPostgresStore(closed)).rejects.toThrow("Cannot connect to the fleet database postgres://fleet@127.0.0.1:1/fleet: expected a Postgres server there that lets its user into its database, got: ");
  });

  test("a URL Bun's client cannot take: an error without its password", async () => {
    const error = await openPostgresStore("postgres://fleet:secret@127.0.0.1:notaport/fleet").catch((caught: Error) => caught);
    expect((error as Error).message).toStartWith("Cannot ");
    expect((error as Error).message).not.toContain("secret");
  });
});
