// Opens the console's delivery metrics in headless Chromium, follows a service's link, and
// checks what a person would see there: the four numbers, three charts drawn (bars with
// their values as tooltips), the steps' legend, the deployments. Takes a screenshot.
//
// usage: node metrics.mjs <console-url> <screenshot.png>
// Prints one JSON line with what it saw; exits 1 (with the reason) if anything is missing.
import { launch } from "./launch.mjs";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node metrics.mjs <console-url> <screenshot.png>");
  process.exit(2);
}

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 820, height: 1100 } });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  const response = await page.goto(`${url}/metrics`);
  if (response.status() !== 200) {
    throw new Error(`/metrics answered ${response.status()}: ${await page.textContent("main")}`);
  }
  await page.getByRole("link", { name: "shop" }).click();
  await page.waitForSelector("svg.chart");
  const text = await page.textContent("main");
  for (const expected of ["Deployment frequency", "Lead time, push to production", "Change failure rate", "Time to restore", "Where the time goes"]) {
    if (!text.includes(expected)) throw new Error(`the page does not show ${JSON.stringify(expected)}`);
  }
  const charts = await page.locator("svg.chart").count();
  const drawn = await page.locator("svg.chart").evaluateAll((svgs) =>
    svgs.map((svg) => {
      const box = svg.getBoundingClientRect();
      const bars = [...svg.querySelectorAll("rect")].filter((r) => r.getBoundingClientRect().width > 0 && r.getBoundingClientRect().height > 0);
      return { width: Math.round(box.width), height: Math.round(box.height), bars: bars.length };
    }));
  const legend = await page.locator(".legend li").allTextContents();
  const rows = await page.locator("table tr").count();
  await page.screenshot({ path: screenshot, fullPage: true });
  if (errors.length) throw new Error(`console errors: ${errors.join("; ")}`);
  console.log(JSON.stringify({ charts, drawn, legend, rows }));
} catch (error) {
  console.error(String(error));
  process.exitCode = 1;
} finally {
  await browser.close();
}
