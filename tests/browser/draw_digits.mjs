// Drives the `serve` page in headless Chromium: draws each digit as strokes, reads what the page shows.
// usage: node draw_digits.mjs URL STROKES.json SCREENSHOT_PREFIX
// prints JSON: the digits read, the warnings shown with each, page errors, and per viewport width (1200 px, a laptop; 390 px, a phone) whether
// the page fits without a horizontal scrollbar; writes SCREENSHOT_PREFIX-1200.png and -390.png
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(process.env.BROWSER_MODULES + "/");
const { chromium } = require("playwright-core");
const [url, strokesFile, screenshotPrefix] = process.argv.slice(2);
const digits = JSON.parse(readFileSync(strokesFile, "utf8"));  // [[[x0, y0, x1, y1], ...], ...] in 0..1

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 720 } });
const errors = [];
page.on("pageerror", (error) => errors.push(error.message));
await page.goto(url);
// before anything is drawn, no result heading stands alone
const emptyHeadings = await page.locator("h3:visible").count();
const pad = await page.locator("#pad").boundingBox();
const read = [];
const warnings = [];
for (const strokes of digits) {
  await page.click("#clear");
  await page.waitForFunction(() => document.getElementById("digit").textContent === "?");
  for (const [x0, y0, x1, y1] of strokes) {
    await page.mouse.move(pad.x + x0 * pad.width, pad.y + y0 * pad.height);
    await page.mouse.down();
    await page.mouse.move(pad.x + x1 * pad.width, pad.y + y1 * pad.height, { steps: 4 });
    await page.mouse.up();
  }
  // every stroke sends the drawing; wait until the answers to all of them are in
  await page.waitForFunction(() => window.pending === 0 && document.getElementById("digit").dataset.digit !== "");
  read.push(Number(await page.locator("#digit").getAttribute("data-digit")));
  warnings.push(await page.locator("#warnings").textContent());
}
const fits = {};
for (const width of [1200, 390]) {
  await page.setViewportSize({ width, height: 720 });
  fits[width] = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  await page.screenshot({ path: `${screenshotPrefix}-${width}.png`, fullPage: true });
}
await browser.close();
console.log(JSON.stringify({ read, warnings, errors, emptyHeadings, fits }));
