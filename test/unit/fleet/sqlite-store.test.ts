// The fleet's reports in SQLite (fleet/sqlite-store.ts): what every store
// does (test/fleet-store-contract.ts), and what only SQLite has: WAL, its
// schema version in PRAGMA user_version, a path that cannot be a database.

import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSqliteStore } from "../../../controller/fleet/sqlite-store.ts";
import type { FleetStore } from "../../../controller/fleet/store.ts";
import { describeFleetStore } from "../../fleet-store-contract.ts";
import { MACHINE_ID } from "../../fleet-envelopes.ts";

describeFleetStore("openSqliteStore", async () => {
  const dir = await mkdtemp(join(tmpdir(), "fleet-store-"));
  const path = join(dir, "fleet.sqlite");
  return {
    store: openSqliteStore(path),
    reopen: async () => openSqliteStore(path),
    refuseReports: async () => {
      const db = new Database(path);
      db.exec("CREATE TRIGGER refuse BEFORE INSERT ON reports BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
      db.close();
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
});

describe("openSqliteStore's own file", () => {
  let dir: string;
  let path: string;
  let store: FleetStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "fleet-store-"));
    path = join(dir, "fleet.sqlite");
    store = openSqliteStore(path);
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("made on first start, in WAL mode, schema version 2", async () => {
    expect(await store.machine(MACHINE_ID)).toBeUndefined();
    const db = new Database(path, { readonly: true });
    expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(db.prepare("PRAGMA user_version").get()).toEqual({ user_version: 2 });
    db.close();
  });

  test("a database of another schema version is refused with its path and both versions", async () => {
    const other = join(dir, "other.sqlite");
    const db = new Database(other);
    db.exec("PRAGMA user_version = 7");
    db.close();
    expect(() => openSqliteStore(other)).toThrow(`Cannot open the fleet database ${other}: its schema is version 7, expected 2 (this controller's); it was made by another controller`);
  });

  test("a path where no database can be made: an error naming it", async () => {
    const missing = join(dir, "no-such-folder", "fleet.sqlite");
    expect(() => openSqliteStore(missing)).toThrow(`Cannot open the fleet database ${missing}: `);
  });
});
