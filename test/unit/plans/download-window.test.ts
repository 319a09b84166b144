import { expect, test } from "bun:test";
import { isDownloadWindow, isTimeZone, parseDownloadWindow } from "../../../controller/config/download-window.ts";
import { isInWindow, localMinuteOfDay, whyOutsideWindow } from "../../../controller/plans/download-window.ts";

const minute = (clock: string): number => {
  const [hours, minutes] = clock.split(":").map(Number) as [number, number];
  return hours * 60 + minutes;
};

test("a window is HH:MM-HH:MM in 24-hour time", () => {
  expect(parseDownloadWindow("22:00-06:00")).toEqual({ start: 22 * 60, end: 6 * 60, text: "22:00-06:00" });
  expect(parseDownloadWindow("00:00-23:59")).toEqual({ start: 0, end: 23 * 60 + 59, text: "00:00-23:59" });
  for (const bad of ["22-06", "22:00 - 06:00", "24:00-06:00", "22:60-06:00", "2:00-06:00", "22:00-06:00-07:00", "", "22:00-22:00"]) {
    expect(parseDownloadWindow(bad)).toBeUndefined();
  }
  expect(isDownloadWindow("")).toBe(true);
  expect(isDownloadWindow("22:00-22:00")).toBe(false);
});

test("a window within a day: the start is in, the end is out", () => {
  const window = parseDownloadWindow("08:30-17:00");
  if (window === undefined) throw new Error("unreachable");
  expect(isInWindow(window, minute("08:29"))).toBe(false);
  expect(isInWindow(window, minute("08:30"))).toBe(true);
  expect(isInWindow(window, minute("16:59"))).toBe(true);
  expect(isInWindow(window, minute("17:00"))).toBe(false);
  expect(isInWindow(window, minute("23:00"))).toBe(false);
});

test("a window across midnight", () => {
  const window = parseDownloadWindow("22:00-06:00");
  if (window === undefined) throw new Error("unreachable");
  for (const clock of ["22:00", "23:59", "00:00", "03:00", "05:59"]) expect(isInWindow(window, minute(clock))).toBe(true);
  for (const clock of ["06:00", "12:00", "21:59"]) expect(isInWindow(window, minute(clock))).toBe(false);
});

test("the minute of the day is on the clocks of the configured zone, summer time included", () => {
  const winterNight = new Date("2026-12-06T23:30:00Z");
  expect(localMinuteOfDay(winterNight, "UTC")).toBe(minute("23:30"));
  expect(localMinuteOfDay(winterNight, "Europe/Berlin")).toBe(minute("00:30"));
  expect(localMinuteOfDay(winterNight, "America/New_York")).toBe(minute("18:30"));
  expect(localMinuteOfDay(winterNight, "Asia/Kolkata")).toBe(minute("05:00"));
  expect(localMinuteOfDay(new Date("2026-07-01T20:15:00Z"), "Europe/Berlin")).toBe(minute("22:15"));
});

test("outside the window the download waits, and the reason names the window, the zone and the local time", () => {
  const at = new Date("2026-12-06T12:00:00Z");
  expect(whyOutsideWindow("22:00-06:00", "Europe/Berlin", at)).toBe("outside the download window 22:00-06:00 Europe/Berlin (it is 13:00 there): booting the local system");
  // 21:30 UTC is 22:30 in Berlin: inside there, outside in UTC
  const evening = new Date("2026-12-06T21:30:00Z");
  expect(whyOutsideWindow("22:00-06:00", "Europe/Berlin", evening)).toBeUndefined();
  expect(whyOutsideWindow("22:00-06:00", "UTC", evening)).toContain("outside the download window 22:00-06:00 UTC (it is 21:30 there)");
  expect(whyOutsideWindow("", "UTC", evening)).toBeUndefined();
});

test("time zones: IANA names the controller knows", () => {
  for (const zone of ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]) expect(isTimeZone(zone)).toBe(true);
  for (const zone of ["", "Mars/Olympus_Mons", "Europe/Berlim", "+25:00"]) expect(isTimeZone(zone)).toBe(false);
});
