// What the fleet's page will show of a machine's last boot, read out of the
// boot report it sent (boot/report.ts's BootReport). The report arrives from
// the network and from controllers of any version, so nothing of its shape is
// assumed: each field is taken only when it is there with the right type, and
// a report without it simply has no such field in its summary.

/** The booted slot as the report names it. */
export interface BootedSlotSummary {
  readonly label: string;
  readonly device: string;
  readonly role: string;
}

/** The booted slot's life cycle after this boot was counted on it. */
export interface HealthSummary {
  readonly attempts: number;
  readonly markedGood: boolean;
  readonly cleanShutdown: boolean;
}

/** The version the update servers offered, from the manifest that decided the check (update-check.ts's CheckSummary). */
export interface OfferedSummary {
  readonly version: string;
  /** the manifest's share of machines, when it rolls out to fewer than all and this machine looked (not when already up to date) */
  readonly rolloutPercent?: number;
}

export interface UpdateSummary {
  readonly decision: string;
  readonly reason: string;
  /** absent when no manifest decided: no server configured or reached, or every one refused */
  readonly offered?: OfferedSummary;
}

export interface BootSummary {
  /** the controller that wrote the report */
  readonly controllerVersion?: string;
  /** "handed-off" or "nothing-bootable" */
  readonly outcome?: string;
  readonly startedAt?: string;
  /** finishedAt minus startedAt: the controller's part of the boot */
  readonly durationMs?: number;
  readonly slot?: BootedSlotSummary;
  /** the version booted: the booted slot's verified version, or the one a diskless boot runs */
  readonly version?: string;
  readonly health?: HealthSummary;
  /** what the update check decided and why */
  readonly update?: UpdateSummary;
  /** the rollback decision, when this boot took an unhealthy system out of service */
  readonly rollback?: string;
}

type Json = Readonly<Record<string, unknown>>;

function objectAt(value: unknown, key: string): Json | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const field = (value as Json)[key];
  return typeof field === "object" && field !== null && !Array.isArray(field) ? (field as Json) : undefined;
}

function stringAt(value: Json | undefined, key: string): string | undefined {
  const field = value?.[key];
  return typeof field === "string" ? field : undefined;
}

function arrayAt(value: Json | undefined, key: string): readonly unknown[] {
  const field = value?.[key];
  return Array.isArray(field) ? field : [];
}

/** Keeps only the keys whose value is there, so a summary never holds `undefined`. */
function present<T extends object>(fields: { readonly [K in keyof T]-?: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as T;
}

function bootedSlot(boot: Json | undefined): BootedSlotSummary | undefined {
  const booted = objectAt(boot, "booted");
  const label = stringAt(booted, "label");
  const device = stringAt(booted, "device");
  const role = stringAt(booted, "role");
  return label === undefined || device === undefined || role === undefined ? undefined : { label, device, role };
}

function bootedVersion(report: Json, slot: BootedSlotSummary | undefined): string | undefined {
  const diskless = stringAt(objectAt(report, "diskless"), "version");
  if (diskless !== undefined) return diskless;
  if (slot === undefined) return undefined;
  const slots = arrayAt(objectAt(report, "update"), "slots");
  const booted = slots.find((entry) => stringAt(entry as Json, "device") === slot.device);
  return booted === undefined ? undefined : stringAt(booted as Json, "version");
}

function health(boot: Json | undefined): HealthSummary | undefined {
  const record = objectAt(boot, "health");
  const attempts = record?.["attempts"];
  const markedGood = record?.["markedGood"];
  const cleanShutdown = record?.["cleanShutdown"];
  if (typeof attempts !== "number" || typeof markedGood !== "boolean" || typeof cleanShutdown !== "boolean") return undefined;
  return { attempts, markedGood, cleanShutdown };
}

function durationMs(startedAt: string | undefined, finishedAt: string | undefined): number | undefined {
  if (startedAt === undefined || finishedAt === undefined) return undefined;
  const duration = Date.parse(finishedAt) - Date.parse(startedAt);
  return Number.isFinite(duration) && duration >= 0 ? duration : undefined;
}

function numberAt(value: Json | undefined, key: string): number | undefined {
  const field = value?.[key];
  return typeof field === "number" && Number.isFinite(field) ? field : undefined;
}

function updateSummary(check: Json | undefined): UpdateSummary | undefined {
  const decision = stringAt(check, "decision");
  const reason = stringAt(check, "reason");
  if (decision === undefined || reason === undefined) return undefined;
  const version = stringAt(objectAt(check, "manifest"), "version");
  const rolloutPercent = numberAt(objectAt(check, "rollout"), "percent");
  const offered = version === undefined ? undefined : present<OfferedSummary>({ version, rolloutPercent });
  return present<UpdateSummary>({ decision, reason, offered });
}

/** Pure: the fields of a boot report the fleet shows; `report` is whatever JSON object the machine sent. */
export function summarizeBootReport(report: Json): BootSummary {
  const boot = objectAt(report, "boot");
  const check = objectAt(objectAt(report, "update"), "check");
  const slot = bootedSlot(boot);
  const startedAt = stringAt(report, "startedAt");
  // plans/boot-order.ts words a rollback "rollback: ... unhealthy; ... becomes SYSFS and boots"
  const rollback = arrayAt(report, "decisions").find((entry): entry is string => typeof entry === "string" && entry.startsWith("rollback: "));
  return present<BootSummary>({
    controllerVersion: stringAt(objectAt(report, "controller"), "version"),
    outcome: stringAt(report, "outcome"),
    startedAt,
    durationMs: durationMs(startedAt, stringAt(report, "finishedAt")),
    slot,
    version: bootedVersion(report, slot),
    health: health(boot),
    update: updateSummary(check),
    rollback,
  });
}
