// zod as every schema of the controller uses it (config/schema.ts, update/manifest.ts):
// set up here, before any schema is made, because zod decides how an object schema
// checks when the schema is built. Interpreted, not compiled: zod would otherwise write
// each object schema's check as a function (new Function) the first time it runs,
// which the few checks of small documents a boot makes never earn back. The config
// stage's first checks of its 14 layers took 7.5 ms natively that way and 2.6 ms
// interpreted, and far more under QEMU's TCG, which translates every piece of machine
// code a JIT writes. The controller checks nothing large or often enough to miss it.

import { z } from "zod";

z.config({ jitless: true });

export { z };
