// Opens an approval link in headless Chromium, checks the evidence a person would look at,
// takes a screenshot, clicks "Approve and switch" and waits for the console's answer.
//
// usage: node approve.mjs <link-url> <screenshot.png>
// Prints one JSON line with what it saw; exits 1 (with the reason) if anything is missing.
import { launch } from "./launch.mjs";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node approve.mjs <link-url> <screenshot.png>");
  process.exit(2);
}

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 820, height: 900 } });
  const response = await page.goto(url);
  if (response.status() !== 200) {
    throw new Error(`the link page answered ${response.status()}: ${await page.textContent("main")}`);
  }
  const heading = (await page.textContent("h1")).trim();
  const text = await page.textContent("main");
  for (const expected of ["awaiting approval", "sha256:", "targets healthy", "migration exited 0", "Decide before"]) {
    if (!text.includes(expected)) throw new Error(`the page does not show ${JSON.stringify(expected)}`);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.getByRole("button", { name: "Approve and switch" }).click();
  await page.waitForSelector("h1:text('Approved')", { timeout: 15000 });
  const answer = (await page.textContent("main")).replace(/\s+/g, " ").trim();
  console.log(JSON.stringify({ heading, answer }));
} catch (error) {
  console.error(String(error));
  process.exitCode = 1;
} finally {
  await browser.close();
}
