// update.download_window and update.timezone as config.d spells them: what
// counts as a window and a zone. The arithmetic on them is in
// plans/download-window.ts.

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

