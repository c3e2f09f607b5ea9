// My page in a real Chromium against the real system (`gamectl up`), as a person uses
// it: register, log in, achieve, watch changes made elsewhere arrive live (also across
// a gateway restart), exchange, be told when to try again while gifts are down, use a
// gift, read the e-mails, log out; every screen scanned for accessibility problems,
// laid out at 375 px, driven by keyboard, and photographed into test-output/.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import AxeBuilder from "@axe-core/playwright";
import { chromium } from "playwright-core";
import { startSystem } from "./system.mjs";

const OUT = join(import.meta.dirname, "..", "test-output");
mkdirSync(OUT, { recursive: true });

// Every run starts a fresh system (its own data dir): the name is free.
const customer = "alice";
const password = "correct horse battery";
/** Raw gRPC code names or bracketed codes must never reach a person. */
const RAW_CODE = /\b(UNAVAILABLE|UNAUTHENTICATED|FAILED_PRECONDITION|RESOURCE_EXHAUSTED|INVALID_ARGUMENT|PERMISSION_DENIED|NOT_FOUND|INTERNAL|UNKNOWN)\b|\[[a-z_]+\]|grpc/;

let system;
let browser;
let page;
const cspViolations = [];

async function eventually(what, check, timeout = 15_000) {
  const until = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`not within ${timeout} ms: ${what}${last ? ` (${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The text of a locator, once it matches `re`. */
async function waitText(locator, re, timeout) {
  return eventually(`${locator} to show ${re}`, async () => {
    const t = (await locator.textContent({ timeout: 1000 })) ?? "";
    return re.test(t) ? t : null;
  }, timeout);
}

const entries = () => page.getByRole("region", { name: "Your missions, newest first" });
const entry = (title) => entries().getByRole("listitem").filter({ has: page.getByRole("heading", { name: title, exact: true }) });
/** The value shown next to a label ("Reward", "Gift", "Mission") in an entry. */
const fact = (item, label) => item.locator("div", { has: page.getByText(label, { exact: true }) }).locator("dd");
const total = (label) => page.getByRole("region", { name: "Points" }).locator("div", { has: page.getByText(label, { exact: true }) }).locator("dd");
const button = (name, scope = page) => scope.getByRole("button", { name, exact: true });

async function noSeriousViolations(screen) {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]).analyze();
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    [],
    `accessibility of ${screen}`,
  );
}

async function shot(name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

async function alerts() {
  return (await page.getByRole("alert").allTextContents()).filter((t) => t.trim());
}

before(async () => {
  system = await startSystem(join(OUT, "system.log"));
  browser = await chromium.launch({
    executablePath: execFileSync("which", ["chromium"], { encoding: "utf8" }).trim(),
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, locale: "en-GB" });
  page = await context.newPage();
  page.on("console", (m) => {
    if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
  });
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

describe("my page in the browser", () => {
  it("is served at the gateway's own address with a strict policy", async () => {
    const res = await fetch(`${system.gateway}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^text\/html/);
    assert.equal(res.headers.get("cache-control"), "no-cache");
    assert.match(res.headers.get("content-security-policy"), /script-src 'self'.*connect-src 'self'.*frame-ancestors 'none'/);
  });

  it("greets with a log-in screen that explains refusals in words", async () => {
    await page.goto(`${system.gateway}/`);
    await page.getByRole("heading", { name: "Game Rewards" }).waitFor();
    await noSeriousViolations("the log-in screen");
    await shot("01-log-in");

    await page.getByLabel("Customer id").fill(`nobody-${Date.now().toString(36)}`);
    await page.getByLabel("Password").fill("not the password");
    await button("Log in").click();
    const [refusal] = await eventually("a refusal", async () => (await alerts())[0] && alerts());
    assert.equal(refusal, "The customer id or the password is not right.");
  });

  it("registers, logs in and shows the page, keeping the token out of URLs and localStorage", async () => {
    await page.getByLabel("Customer id").fill(customer);
    await page.getByLabel("Password").fill(password);
    await button("Register").click();
    await page.getByRole("heading", { name: "My page", level: 1 }).waitFor();
    await page.getByText(`Signed in as ${customer}`).waitFor();
    await waitText(page.getByText(/^Live:/), /changes appear as they happen/);
    await waitText(total("Issued"), /^0$/);

    const storage = await page.evaluate(() => ({ session: sessionStorage.length, local: localStorage.length, url: location.href }));
    assert.equal(storage.local, 0, "nothing in localStorage");
    assert.equal(storage.session, 1, "the session in sessionStorage");
    assert.equal(storage.url, `${system.gateway}/`);
    await noSeriousViolations("my page, empty");
    await shot("02-my-page-empty");
  });

  it("achieves daily-login and shows it ISSUED without a reload", async () => {
    await page.evaluate(() => {
      window.notReloaded = true;
    });
    await button("Achieve Log in today").click();
    const item = entry("Log in today");
    await waitText(fact(item, "Reward"), /^10 points, Issued$/);
    await waitText(total("Available"), /^10$/);
    assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  });

  it("shows, live, a mission achieved by another client", async () => {
    await system.gamectlAs(customer, password, "achieve", "tutorial-complete");
    await waitText(fact(entry("Finish the tutorial"), "Reward"), /^20 points, Issued$/);
    await waitText(total("Available"), /^30$/);
  });

  it("reconnects after the gateway restarts and keeps showing changes live", async () => {
    const before = await system.pidOf("gateway");
    assert.ok(before, "the gateway runs under gamectl up");
    process.kill(before, "SIGKILL");
    await waitText(page.getByText(/reconnecting/), /Connection lost; reconnecting/);
    await eventually("the supervisor restarted the gateway", async () => {
      const now = await system.pidOf("gateway");
      return now && now !== before;
    });
    await waitText(page.getByText(/^Live:/), /changes appear/, 30_000);
    await system.gamectlAs(customer, password, "achieve", "first-win");
    await waitText(fact(entry("Win your first match"), "Reward"), /^50 points, Issued$/);
    assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  });

  it("exchanges a reward for a coffee and shows the gift", async () => {
    const item = entry("Log in today");
    await button("Exchange", item).click();
    const coffee = button("Coffee", item);
    await coffee.waitFor();
    await noSeriousViolations("choosing a gift");
    assert.equal(await coffee.evaluate((b) => b === document.activeElement), true, "focus moved to the first gift");
    await coffee.click();
    await waitText(fact(item, "Gift"), /^Coffee, Issued, ready to use$/);
    await waitText(fact(item, "Reward"), /^10 points, Exchanged$/);
    await waitText(total("Exchanged"), /^10$/);
    await waitText(total("Available"), /^70$/);
    await shot("03-exchanged");
  });

  it("says when to try again while gifts are down, and the reward stays ISSUED", async () => {
    const gift = await system.pidOf("gift");
    assert.ok(gift, "the gift service runs under gamectl up");
    process.kill(gift, "SIGSTOP"); // down, and not restarted by the supervisor
    try {
      const item = entry("Finish the tutorial");
      await button("Exchange", item).click();
      await button("Coffee", item).click();
      const said = await waitText(item.getByRole("alert"), /try again/, 20_000);
      assert.match(said, /^Gifts cannot be handed out right now; your reward is unchanged\. Please try again in \d+ s \(at \d\d:\d\d:\d\d\)\.$/);
      assert.doesNotMatch(said, RAW_CODE);
      assert.equal(await fact(item, "Reward").textContent(), "20 points, Issued");
      await button("Exchange", item).waitFor();
      await noSeriousViolations("the try-again message");
      await shot("04-try-again");
    } finally {
      process.kill(gift, "SIGCONT");
    }
  });

  it("exchanges once gifts are back", async () => {
    const item = entry("Finish the tutorial");
    await eventually("the exchange went through", async () => {
      if (!(await button("Exchange", item).isVisible())) return true;
      await button("Exchange", item).click();
      await button("Coffee", item).click();
      await waitText(item, /Exchanged|try again/, 10_000);
      if (/Exchanged/.test(await item.textContent())) return true;
      await new Promise((r) => setTimeout(r, 1000));
      return false;
    }, 60_000);
    await waitText(fact(item, "Gift"), /^Coffee, Issued, ready to use$/);
  });

  it("uses a gift and shows the e-mails sent", async () => {
    const item = entry("Log in today");
    await button("Use", item).click();
    await waitText(fact(item, "Gift"), /^Coffee, Used$/);
    const mails = page.getByRole("region", { name: "E-mails sent to you" });
    await eventually("three e-mails", async () => (await mails.getByRole("listitem").count()) === 3, 20_000);
    const subjects = await mails.getByRole("listitem").locator("strong").allTextContents();
    assert.deepEqual(subjects.toSorted(), ["You used your gift: Coffee", "Your gift: Coffee", "Your gift: Coffee"]);
    await noSeriousViolations("my page, full");
    await shot("05-my-page");
  });

  it("fits a 375 px wide screen and works by keyboard alone", async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `no sideways scrolling: the page is ${width} px wide`);
    await noSeriousViolations("my page at 375 px");
    await shot("06-phone");

    const before = await entries().getByRole("heading", { name: "Log in today", exact: true }).count();
    await page.getByRole("heading", { name: "My page", level: 1 }).focus();
    await eventually("Tab reaches the button", async () => {
      await page.keyboard.press("Tab");
      return page.evaluate(() => document.activeElement?.textContent === "Achieve Log in today");
    }, 10_000);
    await page.keyboard.press("Enter");
    await eventually("a second daily login", async () => (await entries().getByRole("heading", { name: "Log in today", exact: true }).count()) === before + 1);
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  it("renders my page quickly on a reload (time to first render, from the Performance API)", async (t) => {
    const times = [];
    for (let i = 0; i < 5; i++) {
      await page.reload();
      const ms = await eventually("the render mark", () =>
        page.evaluate(() => performance.getEntriesByName("mypage-rendered")[0]?.startTime),
      );
      times.push(ms);
    }
    await page.getByText(`Signed in as ${customer}`).waitFor();
    times.sort((a, b) => a - b);
    const median = times[2];
    t.diagnostic(`time to first render of my page: median ${median.toFixed(0)} ms (${times.map((x) => x.toFixed(0)).join(", ")} ms)`);
    assert.ok(median < 2000, `first render took ${median} ms`);
  });

  it("logs out: back to the log-in screen with the token gone", async () => {
    await button("Log out").click();
    await page.getByLabel("Customer id").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
    await page.reload();
    await page.getByLabel("Customer id").waitFor();
    await noSeriousViolations("the log-in screen after logging out");
  });

  it("showed no raw codes and broke no rule of the page's security policy", async () => {
    assert.deepEqual(cspViolations, []);
    assert.doesNotMatch(await page.locator("body").innerText(), RAW_CODE);
  });
});
