// The hours in which a boot may start an update download (update.download_window
// in update.timezone): a lab's network is for its users by day. Pure: the
// clock and the zone come in, a decision goes out.

/** A window as config.d gives it: minutes after local midnight; `end` before `start` runs across midnight. */
export interface DownloadWindow {
  readonly start: number;
  readonly end: number;
  /** "22:00-06:00", as config.d spells it */
  readonly text: string;
}

export const DOWNLOAD_WINDOW_EXPECTED =
  '"" for no window (downloads at any time) or "HH:MM-HH:MM" in 24-hour time such as "22:00-06:00" (the end may be past midnight; start and end differ)';

const WINDOW = /^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$/;

/** Pure: the window in `text`, or undefined when it is not one. Start == end is refused: it could mean "never" or "always", and "" already says always. */
export function parseDownloadWindow(text: string): DownloadWindow | undefined {
  const match = WINDOW.exec(text);
  if (match === null) return undefined;
  const [hourStart, minuteStart, hourEnd, minuteEnd] = match.slice(1).map(Number) as [number, number, number, number];
  const start = hourStart * 60 + minuteStart;
  const end = hourEnd * 60 + minuteEnd;
  return start === end ? undefined : { start, end, text };
}

export function isDownloadWindow(text: string): boolean {
  return text === "" || parseDownloadWindow(text) !== undefined;
}

/** A zone Intl knows (bun ships ICU's time zone data, in the compiled controller too): "UTC", "Europe/Berlin". */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: zone });
    return zone !== "";
  } catch {
    return false;
  }
}

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
