// `controller version`.

import { COMMIT, VERSION } from "../system/version.ts";
import { print } from "./output.ts";

export function versionCommand(): number {
  print(`controller ${VERSION} (${COMMIT})`);
  return 0;
}
