// Times as the fleet's page shows them: UTC to the minute, and how long ago
// by the server's clock, so a person does not do the arithmetic. Times a
// machine sent are its own clock's and may be anything: one that is not a
// time shows as the text it is.

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** "2026-12-06 18:40 UTC", or undefined when `iso` is not a time. */
export function utcMinute(iso: string): string | undefined {
  const time = Date.parse(iso);
  if (!Number.isFinite(time)) return undefined;
  return `${new Date(time).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** How far `iso` is from `now`: "just now", "5 min ago", "3 h ago", "2 d ago", or "in 5 min" for a clock ahead. */
export function relativeTime(iso: string, now: Date): string | undefined {
  const time = Date.parse(iso);
  if (!Number.isFinite(time)) return undefined;
  const difference = now.getTime() - time;
  const distance = Math.abs(difference);
  if (distance < MINUTE_MS) return "just now";
  const amount = distance < HOUR_MS ? `${Math.floor(distance / MINUTE_MS)} min` : distance < 2 * DAY_MS ? `${Math.floor(distance / HOUR_MS)} h` : `${Math.floor(distance / DAY_MS)} d`;
  return difference > 0 ? `${amount} ago` : `in ${amount}`;
}

/** "2026-12-06 18:40 UTC (3 h ago)"; the text as it came when it is not a time. */
export function describeTime(iso: string, now: Date): string {
  const minute = utcMinute(iso);
  return minute === undefined ? iso : `${minute} (${relativeTime(iso, now)})`;
}

/** Whether `iso` is more than `hours` before `now`; a time that is not one counts as long ago. */
export function olderThan(iso: string, hours: number, now: Date): boolean {
  const time = Date.parse(iso);
  return !Number.isFinite(time) || now.getTime() - time > hours * HOUR_MS;
}

/** A duration in ms as "850 ms", "1.25 s" or "2 min 5 s". */
export function describeDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < MINUTE_MS) return `${(ms / 1000).toFixed(2).replace(/\.?0+$/, "")} s`;
  return `${Math.floor(ms / MINUTE_MS)} min ${Math.round((ms % MINUTE_MS) / 1000)} s`;
}
