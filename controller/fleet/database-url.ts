// What `controller fleet-server --db` names: a Postgres database by its URL,
// anything else a SQLite file. Kept apart from the stores, so the command
// tells them apart without loading either.

/** postgres:// and postgresql://, the schemes libpq and Bun's SQL client take. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

/** The URL as it may be shown in errors and logs: without its password, which stays secret. */
export function withoutPassword(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // not a URL the parser takes: show only its scheme, since where the password is cannot be told
    return `${url.split("//")[0] ?? ""}//(a URL that cannot be parsed)`;
  }
  if (parsed.password === "") return url;
  parsed.password = "";
  return parsed.href;
}
