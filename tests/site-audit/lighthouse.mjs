// Lighthouse (mobile profile, the default) on each URL given, RUNS times each, in one
// Chromium (Debian's, from CHROME_PATH). Prints one JSON line per run: url, scores, metrics.
// Usage: RUNS=3 node lighthouse.mjs URL...
import lighthouse from "lighthouse";
import * as chromeLauncher from "chrome-launcher";

const runs = Number(process.env.RUNS || 3);
const chrome = await chromeLauncher.launch({
  chromePath: process.env.CHROME_PATH || "/usr/bin/chromium",
  chromeFlags: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const categories = ["performance", "accessibility", "best-practices", "seo"];
try {
  for (const url of process.argv.slice(2)) {
    for (let run = 0; run < runs; run++) {
      const result = await lighthouse(url, { port: chrome.port, output: "json", logLevel: "error", onlyCategories: categories });
      const lhr = result.lhr;
      const scores = Object.fromEntries(categories.map((c) => [c, Math.round(lhr.categories[c].score * 100)]));
      const failed = Object.values(lhr.audits)
        .filter((a) => a.score !== null && a.score < 1 && ["binary"].includes(a.scoreDisplayMode))
        .map((a) => a.id);
      const metrics = Object.fromEntries(
        ["first-contentful-paint", "largest-contentful-paint", "total-blocking-time", "cumulative-layout-shift", "speed-index"]
          .map((m) => [m, lhr.audits[m].numericValue]),
      );
      console.log(JSON.stringify({ url, run, scores, failed, metrics }));
    }
  }
} finally {
  await chrome.kill();
}
