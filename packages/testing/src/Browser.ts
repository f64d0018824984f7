/**
 * Headless Chromium for the browser tests: Debian's `chromium` package driven by
 * `playwright-core` (which brings no browser of its own). `.ci/run` installs the package
 * when it is missing; `SYNOD_CHROMIUM` names another executable.
 *
 * Screenshots go to the test's own temporary directory, or to `SYNOD_SCREENSHOTS` when
 * set (the README's pictures: `SYNOD_SCREENSHOTS=docs/img`).
 *
 * @since 0.2.0
 */
import { existsSync, mkdirSync } from "node:fs"
import * as Path from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"

export type { Browser, Page }

export const executable = process.env.SYNOD_CHROMIUM ?? "/usr/bin/chromium"

/** Starts the browser; fails with what to install when there is none. */
export const launch = async (): Promise<Browser> => {
  if (!existsSync(executable)) {
    throw new Error(
      `no Chromium at ${executable}: install Debian's chromium package (apt-get install chromium; .ci/run does) or set SYNOD_CHROMIUM`
    )
  }
  // --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start
  return chromium.launch({ executablePath: executable, args: ["--no-sandbox", "--disable-gpu"] })
}

/** A page that records its script errors, so a test can assert there were none. */
export const open = async (
  browser: Browser,
  url: string,
  viewport = { width: 1400, height: 900 }
): Promise<{ readonly page: Page; readonly errors: Array<string> }> => {
  const page = await browser.newPage({ viewport })
  const errors: Array<string> = []
  page.on("pageerror", (e) => errors.push(String(e)))
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text())
  })
  await page.goto(url)
  return { page, errors }
}

/**
 * Waits until the text of the first element matching `selector` satisfies `test` (a
 * JavaScript expression over \`text\`, evaluated in the page), or fails after `timeoutMs`.
 */
export const waitForText = (page: Page, selector: string, test: string, timeoutMs = 20_000): Promise<unknown> =>
  page.waitForFunction(
    `(() => { const el = document.querySelector(${JSON.stringify(selector)}); if (!el) return false; const text = el.textContent; return ${test}; })()`,
    undefined,
    { timeout: timeoutMs }
  )

/** Where a screenshot named `name` goes: `SYNOD_SCREENSHOTS` if set, else `fallbackDir`. */
export const screenshotPath = (fallbackDir: string, name: string): string => {
  const dir = process.env.SYNOD_SCREENSHOTS ?? fallbackDir
  mkdirSync(dir, { recursive: true })
  return Path.resolve(dir, name)
}
