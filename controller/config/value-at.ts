// One value out of a parsed TOML or JSON document by its key path, so a
// message can quote what a file really holds at the key it names.

/** The value at `path`, or undefined when any part of the way is missing or not an object. */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const part of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}
