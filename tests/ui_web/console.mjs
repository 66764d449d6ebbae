// Drives the web console in Debian's Chromium with playwright-core, as a person would.
// Usage: node console.mjs URL MANIFEST_DIR SCREENSHOT; prints one JSON line of findings.
// Every wait is bounded (playwright's timeouts); a failure exits non-zero with the reason.
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

// playwright-core lives where .ci/run installed it (NODE_PATH), not beside this file.
const require = createRequire(join(process.env.NODE_PATH, "resolve-from-here.js"));
const { chromium } = require("playwright-core");

const [url, dir, screenshot] = process.argv.slice(2);
const TIMEOUT = 20000;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const findings = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(TIMEOUT);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  const started = Date.now();
  await page.goto(url);
  // The token left the address bar: the session cookie carries on.
  findings.url_after_login = page.url();
  const row = (name) => page.locator(`#children tbody tr[data-name="${name}"]`);
  await row("web").locator("td.state-ready").waitFor();
  findings.first_render_ms = Date.now() - started;
  findings.navigation = await page.evaluate(() => {
    const [n] = performance.getEntriesByType("navigation");
    return n ? { dom_content_loaded_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd } : null;
  });
  findings.children = await page.locator("#children tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.name));

  // Follows a log: the selected child's output appears, and keeps coming.
  await row("web").click();
  await page.locator("#log", { hasText: "web started" }).waitFor();
  // Hostile output is shown as text, never as markup.
  await page.locator("#log", { hasText: "<b>not bold</b>" }).waitFor();
  findings.markup_in_log = await page.locator("#log b").count();
  // Search highlights.
  await page.fill("#search", "started");
  await page.locator("#log .hit").first().waitFor();

  // A bad save shows as a manifest error with file:line:col.
  writeFileSync(join(dir, "bad.yaml"), "name: bad\ncommand: 42\n");
  await page.click('.tabs button[data-tab="errors"]');
  await page.locator("#error-list .where", { hasText: "bad.yaml:2" }).waitFor();
  findings.error = await page.locator("#error-list li").first().innerText();

  // Restart: asks for a reason; the pid changes.
  const pid = await row("web").locator("td.pid").innerText();
  findings.pid_before = pid;
  page.once("dialog", (dialog) => dialog.accept("from the browser"));
  await page.click('#actions button[data-verb="restart"]');
  await page.locator("#outcome", { hasText: "restart web: accepted" }).waitFor();
  await page.waitForFunction((old) => {
    const cell = document.querySelector('#children tbody tr[data-name="web"] td.pid');
    const state = document.querySelector('#children tbody tr[data-name="web"] td:nth-child(2)');
    return cell && cell.textContent !== old && cell.textContent !== "-" && state.textContent === "ready";
  }, pid, { timeout: TIMEOUT });
  findings.pid_after = await row("web").locator("td.pid").innerText();

  await page.click('.tabs button[data-tab="logs"]');
  await page.fill("#search", "");
  await page.screenshot({ path: screenshot });

  // A page of another origin cannot change anything: its POST is refused.
  const foreign = await browser.newPage();
  await foreign.goto("about:blank");
  findings.cross_origin = await foreign.evaluate(async (target) => {
    try {
      const r = await fetch(target + "api/v1/children/web/stop", { method: "POST", mode: "no-cors",
        headers: { "Content-Type": "text/plain" }, body: "{}", credentials: "include" });
      return r.type;
    } catch (e) { return "blocked: " + e; }
  }, new URL("/", url).href);
  findings.page_errors = errors;
  console.log(JSON.stringify(findings));
} catch (error) {
  console.log(JSON.stringify({ ...findings, failure: String(error) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
