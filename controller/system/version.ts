// The controller's version, from package.json, and the commit it was built
// from (scripts/build-controller defines CONTROLLER_COMMIT; under `bun test` it is unset).

import packageJson from "../../package.json" with { type: "json" };

declare const CONTROLLER_COMMIT: string | undefined;

export const VERSION: string = packageJson.version;
export const COMMIT: string = typeof CONTROLLER_COMMIT === "string" ? CONTROLLER_COMMIT : "development";
