// The fleet's page in a real browser: Debian's chromium, headless, driven by
// puppeteer-core (which drives a browser and brings none). What a person
// sees is read from the page as its visible text (innerText), cell by cell.
// Shared by the browser test and the QEMU test that opens the page a real
// machine reported to.

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type Browser, launch, type Page } from "puppeteer-core";

/**
 * The little of the DOM that the functions run inside the page use. The
 * project's type check has no DOM library (the controller runs in no
 * browser); declared here, in this module only, they do not make `document`
 * look defined to any other file.
 */
interface PageElement {
  readonly tagName: string;
  readonly innerText: string;
  getAttributeNames(): string[];
  getAttribute(name: string): string | null;
  querySelectorAll(selectors: string): ArrayLike<PageElement> & Iterable<PageElement>;
}
declare const document: PageElement & { readonly documentElement: { readonly scrollWidth: number } };
declare const window: { readonly innerWidth: number };

/** Debian's chromium (scripts/setup installs it). */
export const CHROMIUM = "/usr/bin/chromium";

/** A phone's viewport in CSS pixels (an iPhone 12 to 15). */
export const PHONE = { width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 } as const;
export const DESKTOP = { width: 1280, height: 900 } as const;

export interface Chromium {
  readonly browser: Browser;
  /** closes the browser and deletes its profile */
  close(): Promise<void>;
}

/**
 * A headless chromium with a fresh profile in a temporary folder. Root (CI)
 * cannot run chromium's sandbox, so there it runs without it: the pages it
 * opens are the tests' own.
 */
export async function launchChromium(): Promise<Chromium> {
  const profile = await mkdtemp(join(tmpdir(), "fleet-chromium-"));
  const sandbox = process.getuid?.() === 0 ? ["--no-sandbox"] : [];
  const removeProfile = () => rm(profile, { recursive: true, force: true });
  let browser: Browser;
  try {
    browser = await launch({ executablePath: CHROMIUM, headless: true, userDataDir: profile, args: [...sandbox, "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"] });
  } catch (error) {
    await removeProfile();
    throw new Error(`Cannot start ${CHROMIUM}: ${(error as Error).message}`);
  }
  return {
    browser,
    close: async () => {
      await browser.close();
      await removeProfile();
    },
  };
}

/** Runs `use` with a chromium of its own, closed afterwards whether `use` passed or threw. */
export async function withChromium<T>(use: (browser: Browser) => Promise<T>): Promise<T> {
  const chromium = await launchChromium();
  try {
    return await use(chromium.browser);
  } finally {
    await chromium.close();
  }
}

/** A tab signed in to the fleet server, and every dialog (alert, confirm, prompt) anything on it opened. */
export interface FleetTab {
  readonly page: Page;
  readonly dialogs: string[];
}

/** A new tab that signs in with the read token as HTTP Basic's password, as a person types it into the browser's box. */
export async function openTab(browser: Browser, readToken: string, viewport: { width: number; height: number } = DESKTOP): Promise<FleetTab> {
  const page = await browser.newPage();
  const dialogs: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  await page.setViewport(viewport);
  await page.authenticate({ username: "fleet", password: readToken });
  return { page, dialogs };
}

/** Opens `url` in the tab; throws with the status and the page's text unless it answered 200. */
export async function visit(tab: FleetTab, url: string): Promise<void> {
  const response = await tab.page.goto(url, { waitUntil: "load" });
  if (response?.status() !== 200) {
    throw new Error(`Cannot open ${url}: expected 200, got ${response?.status() ?? "no answer"}: ${(await tab.page.evaluate("document.body.innerText")) as string}`);
  }
}

/** A table as a person reads it: each row's cells by their column's heading, as visible text. */
export type SeenRow = Record<string, string>;

/** The rows of the table `selector`, or none when the page has no such table. */
export async function readTable(page: Page, selector: string): Promise<SeenRow[]> {
  const cells = await page.$$eval(`${selector} tr`, (rows: PageElement[]) => rows.map((row) => [...row.querySelectorAll("th, td")].map((cell) => cell.innerText.trim())));
  const [headings = [], ...body] = cells;
  return body.map((row) => Object.fromEntries(headings.map((heading, index) => [heading, row[index] ?? ""])));
}

/** What could run on the page: its script elements, the on* attributes of any element, elements that load things, and javascript: links. */
export interface Runnable {
  readonly scripts: number;
  readonly handlers: string[];
  readonly loaders: string[];
  readonly javascriptLinks: string[];
}

export async function findRunnable(page: Page): Promise<Runnable> {
  return page.evaluate(() => {
    const elements = [...document.querySelectorAll("*")];
    return {
      scripts: document.querySelectorAll("script").length,
      handlers: elements.flatMap((element) => element.getAttributeNames().filter((name) => name.toLowerCase().startsWith("on")).map((name) => `${element.tagName} ${name}`)),
      loaders: [...document.querySelectorAll("img, iframe, object, embed, svg, video, audio, link, base, frame, math")].map((element) => element.tagName),
      javascriptLinks: [...document.querySelectorAll("[href], [src], [action], [formaction]")]
        .flatMap((element) => ["href", "src", "action", "formaction"].map((name) => element.getAttribute(name) ?? ""))
        .filter((value) => /^\s*javascript:/i.test(value)),
    };
  });
}

/** Whether the document is wider than the viewport: a page a phone would scroll sideways as a whole. */
export async function scrollsSideways(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
}

/** Whether the element `selector` scrolls its content sideways inside itself (a wide table in its box). */
export async function scrollsWithin(page: Page, selector: string): Promise<boolean> {
  return page.$eval(selector, (element: PageElement & { readonly scrollWidth: number; readonly clientWidth: number }) => element.scrollWidth > element.clientWidth);
}

/** The whole page as a PNG at `path`, its folder made when missing. */
export async function screenshot(page: Page, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await page.screenshot({ path: path as `${string}.png`, fullPage: true, type: "png" });
}

/** The fleet's page as a person sees it, and what on it could run. */
export interface SeenFleet {
  readonly machines: SeenRow[];
  readonly versions: SeenRow[];
  readonly rollouts: SeenRow[];
  readonly runnable: Runnable;
  readonly dialogs: string[];
}

/**
 * Opens the fleet's page of the server at `baseUrl` (with its trailing
 * slash), `query` its filters (such as "?version=2.0"), signed in with
 * `readToken`, in a tab of its own; saves a screenshot at `screenshotPath`
 * when given one. The tab is closed afterwards.
 */
export async function seeFleet(browser: Browser, baseUrl: string, readToken: string, options: { query?: string; screenshotPath?: string } = {}): Promise<SeenFleet> {
  const tab = await openTab(browser, readToken);
  try {
    await visit(tab, new URL(options.query ?? "", baseUrl).href);
    const seen = {
      machines: await readTable(tab.page, "#machines"),
      versions: await readTable(tab.page, "#versions"),
      rollouts: await readTable(tab.page, "#rollouts"),
      runnable: await findRunnable(tab.page),
    };
    if (options.screenshotPath !== undefined) await screenshot(tab.page, options.screenshotPath);
    return { ...seen, dialogs: tab.dialogs };
  } finally {
    await tab.page.close();
  }
}

/** A machine's page as a person sees it: its facts by name, its history, its last boot report (parsed from the text shown), what could run. */
export interface SeenMachine {
  readonly hostname: string;
  readonly facts: Record<string, string>;
  readonly history: SeenRow[];
  readonly report: unknown;
  readonly runnable: Runnable;
  readonly dialogs: string[];
}

/** Opens `machineId`'s page of the server at `baseUrl` as seeFleet opens the fleet's. */
export async function seeMachine(browser: Browser, baseUrl: string, readToken: string, machineId: string, screenshotPath?: string): Promise<SeenMachine> {
  const tab = await openTab(browser, readToken);
  try {
    await visit(tab, new URL(`machines/${machineId}`, baseUrl).href);
    const text = (selector: string) => tab.page.$eval(selector, (element: PageElement) => element.innerText);
    const facts = await tab.page.$$eval("#facts > dt, #facts > dd", (items: PageElement[]) => items.map((item) => item.innerText.trim()));
    const report = await tab.page.$("#report");
    const seen = {
      hostname: await text("h1"),
      facts: Object.fromEntries(facts.flatMap((name, index) => (index % 2 === 0 ? [[name, facts[index + 1] ?? ""]] : []))),
      history: await readTable(tab.page, "#history"),
      report: report === null ? undefined : JSON.parse(await text("#report")),
      runnable: await findRunnable(tab.page),
    };
    if (screenshotPath !== undefined) await screenshot(tab.page, screenshotPath);
    return { ...seen, dialogs: tab.dialogs };
  } finally {
    await tab.page.close();
  }
}
