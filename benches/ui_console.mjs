// The web console with many children, timed in Debian's Chromium driven by playwright-core
// (run by benches/ui.rs, which prints the figures).
// Usage: node ui_console.mjs URL CHILDREN SAMPLES LOADS
//   URL: the console's URL with its token, as `herder up --web` printed it.
// Prints one JSON line: page loads (navigation start -> every row in the table) and, per
// sample, the wall-clock times (Date.now(), the same clock in node and in the page) of a
// child's SIGKILL (sent from here) and of its row changing in the page.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const require = createRequire(join(process.env.NODE_PATH, "resolve-from-here.js"));
const { chromium } = require("playwright-core");

const [url, childrenArg, samplesArg, loadsArg] = process.argv.slice(2);
const CHILDREN = Number(childrenArg);
const SAMPLES = Number(samplesArg);
const LOADS = Number(loadsArg);
const TIMEOUT = 60000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// In the page before its own script: the moment the table first holds every row (a
// MutationObserver on the document, so the time is that of the DOM change, before paint)
// and the frame after it; and, for the latency samples, the first `scheduleRefresh` (an
// event arrived) and the status fetches, to tell where the time goes.
function instrument(children) {
  window.__bench = { rows_ms: null, frame_ms: null };
  const observer = new MutationObserver(() => {
    const body = document.querySelector("#children tbody");
    if (body && body.rows.length >= children && window.__bench.rows_ms === null) {
      window.__bench.rows_ms = performance.now();
      observer.disconnect();
      requestAnimationFrame(() => setTimeout(() => { window.__bench.frame_ms = performance.now(); }, 0));
    }
  });
  observer.observe(document, { childList: true, subtree: true });
}

async function load(page, target) {
  await page.goto(target, { waitUntil: "load" });
  await page.waitForFunction(() => window.__bench && window.__bench.frame_ms !== null, null, { timeout: TIMEOUT });
  return page.evaluate(() => {
    const [n] = performance.getEntriesByType("navigation");
    const status = performance.getEntriesByType("resource").find((r) => r.name.endsWith("/api/v1/status"));
    const paint = performance.getEntriesByName("first-contentful-paint")[0];
    return {
      rows_ms: window.__bench.rows_ms,
      frame_ms: window.__bench.frame_ms,
      response_end_ms: n ? n.responseEnd : null,
      dom_content_loaded_ms: n ? n.domContentLoadedEventEnd : null,
      load_ms: n ? n.loadEventEnd : null,
      first_contentful_paint_ms: paint ? paint.startTime : null,
      redirect_ms: n ? n.redirectEnd - n.redirectStart : null,
      first_status_fetch_ms: status ? status.responseEnd - status.startTime : null,
      first_status_bytes: status ? status.decodedBodySize : null,
      rows: document.querySelector("#children tbody").rows.length,
    };
  });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const findings = { loads: [], samples: [] };
try {
  // Page loads: the first with the token (a redirect and a new session), then reloads.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript(instrument, CHILDREN);
  // HERDER_CONSOLE_SCRIPT: serve this file as the page's script instead of the embedded
  // one (to time a change to src/web/console/app.js without rebuilding herder).
  if (process.env.HERDER_CONSOLE_SCRIPT) {
    const body = readFileSync(process.env.HERDER_CONSOLE_SCRIPT, "utf8");
    await context.route((u) => u.pathname === "/app.js",
      (route) => route.fulfill({ contentType: "text/javascript; charset=utf-8", body }));
  }
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  const root = new URL("/", url).href;
  for (let n = 0; n < LOADS; n++) {
    findings.loads.push(await load(page, n === 0 ? url : root));
    await sleep(500);
  }

  // Where the time goes after an event: wrap the page's own functions (classic-script
  // globals, so its calls go through the wrappers).
  await page.evaluate(() => {
    const bench = window.__bench;
    const schedule = window.scheduleRefresh;
    window.scheduleRefresh = function () {
      if (bench.armed && bench.first_event === null) bench.first_event = Date.now();
      return schedule.apply(this, arguments);
    };
    const render = window.renderTable;
    window.renderTable = function () {
      const begun = performance.now();
      const result = render.apply(this, arguments);
      bench.renders.push(performance.now() - begun);
      return result;
    };
    bench.renders = [];
    bench.first_event = null;
    performance.setResourceTimingBufferSize(100000);
  });

  // Exit -> row change: SIGKILL a child's pid (as the page shows it) from here; the page's
  // MutationObserver stamps the first DOM change of that row's pid or state cell.
  const pick = (n) => `c-${String(10 + ((n * 13) % (CHILDREN - 10))).padStart(4, "0")}`;
  for (let n = 0; n < SAMPLES; n++) {
    const name = pick(n);
    // Running and ready in the page (an earlier sample's child may still be restarting).
    const handle = await page.waitForFunction((name) => {
      const row = document.querySelector(`#children tbody tr[data-name="${name}"]`);
      if (!row) return null;
      const pid = row.querySelector("td.pid").textContent;
      return /^\d+$/.test(pid) && row.cells[1].textContent === "ready" ? pid : null;
    }, name, { timeout: TIMEOUT });
    const pid = await handle.jsonValue();
    // Quiet: no refresh pending from the earlier sample.
    await sleep(300);
    await page.evaluate(([name, pid]) => {
      const bench = window.__bench;
      bench.first_event = null;
      bench.renders = [];
      bench.armed = true;
      performance.clearResourceTimings();
      bench.changed = new Promise((resolve) => {
        const body = document.querySelector("#children tbody");
        const observer = new MutationObserver(() => {
          const row = body.querySelector(`tr[data-name="${name}"]`);
          if (!row) return;
          if (row.querySelector("td.pid").textContent !== pid || row.cells[1].textContent !== "ready") {
            const at = Date.now();
            observer.disconnect();
            requestAnimationFrame(() => setTimeout(() => resolve({ at, frame: Date.now(), pid: row.querySelector("td.pid").textContent, state: row.cells[1].textContent }), 0));
          }
        });
        observer.observe(body, { childList: true, subtree: true, characterData: true });
      });
    }, [name, pid]);
    const killed = Date.now();
    process.kill(Number(pid), "SIGKILL");
    const seen = await page.evaluate(async () => {
      const bench = window.__bench;
      const changed = await bench.changed;
      bench.armed = false;
      const fetches = performance.getEntriesByType("resource")
        .filter((r) => r.name.endsWith("/api/v1/status"))
        .map((r) => ({ start: performance.timeOrigin + r.startTime, end: performance.timeOrigin + r.responseEnd }));
      return { ...changed, first_event: bench.first_event, fetches, renders: bench.renders };
    });
    findings.samples.push({
      name,
      kill_to_dom_ms: seen.at - killed,
      kill_to_frame_ms: seen.frame - killed,
      kill_to_event_ms: seen.first_event === null ? null : seen.first_event - killed,
      kill_to_fetch_start_ms: seen.fetches.length ? seen.fetches[0].start - killed : null,
      fetch_ms: seen.fetches.length ? seen.fetches[0].end - seen.fetches[0].start : null,
      render_ms: seen.renders.length ? Math.max(...seen.renders) : null,
      now: `${seen.state} ${seen.pid}`,
    });
  }
  // The page left alone for 10 s (its own once-a-second table render, SSE keep-alives):
  // the main thread's busy time, from Chromium's own counters.
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  const metrics = async () => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  await sleep(2000);
  const before = await metrics();
  await sleep(10000);
  const after = await metrics();
  const busy = (key) => (after[key] - before[key]) * 1000;
  findings.idle = {
    seconds: after.Timestamp - before.Timestamp,
    task_ms: busy("TaskDuration"), script_ms: busy("ScriptDuration"),
    layout_ms: busy("LayoutDuration"), style_ms: busy("RecalcStyleDuration"),
  };
  // One pid cell's text changes: the style and layout the next frame needs, forced here.
  findings.relayout_ms = await page.evaluate(() => {
    const times = [];
    const cell = document.querySelector("#children tbody tr td.pid");
    for (let n = 0; n < 7; n++) {
      document.body.offsetHeight;
      cell.textContent = n % 2 ? "1" : "22";
      const begun = performance.now();
      document.body.offsetHeight;
      times.push(performance.now() - begun);
    }
    return times.sort((a, b) => a - b)[3];
  });
  findings.page_errors = errors;
  console.log(JSON.stringify(findings));
} catch (error) {
  console.log(JSON.stringify({ ...findings, failure: String(error) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
