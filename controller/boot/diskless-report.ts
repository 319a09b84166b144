// What the boot report keeps of a diskless boot, apart from the stage that
// makes it (diskless.ts): report.ts and the stage both use it, and the report
// must not depend on the stage.

import type { RamNeed } from "../plans/diskless.ts";

/** What the report keeps of a diskless boot. */
export interface DisklessReport {
  readonly why: string;
  readonly status: "running-from-ram" | "refused" | "failed";
  readonly detail: string;
  readonly version?: string;
  /** the image in RAM, in initramfs terms */
  readonly image?: string;
  readonly imageBytes?: number;
  readonly ram?: RamNeed;
  readonly bytesFetched: number;
  readonly resumes: number;
  readonly durationMs: number;
  /** MB/s of the download, when there was one */
  readonly throughputMBps?: number;
}
