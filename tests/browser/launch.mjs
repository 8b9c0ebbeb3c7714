// Headless Chromium as the browser tests start it: Debian's (or BLUEGREEN_CHROMIUM), kept
// from calling home (this machine has no network beyond localhost).
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.BLUEGREEN_CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}
