// The hours in which a boot may start an update download (update.download_window
// in update.timezone): a lab's network is for its users by day. Pure: the
// clock and the zone come in, a decision goes out.

import { parseDownloadWindow, type DownloadWindow } from "../config/download-window.ts";

/** Pure: minutes after midnight of `now` on the clocks of `zone`. */
export function localMinuteOfDay(now: Date, zone: string): number {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(now);
  const part = (type: "hour" | "minute"): number => Number(parts.find((p) => p.type === type)?.value);
  return part("hour") * 60 + part("minute");
}

/** Pure: whether a minute of the day is in the window; the start is in, the end is out. */
export function isInWindow(window: DownloadWindow, minute: number): boolean {
  return window.start < window.end ? minute >= window.start && minute < window.end : minute >= window.start || minute < window.end;
}

/** Pure: why a download may not start now (update.download_window), or undefined when it may. `windowText` "" is no window. */
export function whyOutsideWindow(windowText: string, zone: string, now: Date): string | undefined {
  const window = parseDownloadWindow(windowText);
  if (window === undefined) return undefined;
  const minute = localMinuteOfDay(now, zone);
  if (isInWindow(window, minute)) return undefined;
  const clock = `${String(Math.floor(minute / 60)).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}`;
  return `outside the download window ${window.text} ${zone} (it is ${clock} there): booting the local system`;
}
