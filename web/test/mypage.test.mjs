// My page in a real Chromium against the real system (`gamectl up`), as a person uses
// it: register, log in, see what can be achieved now and what the game reports, achieve,
// watch changes made elsewhere arrive live (also across a gateway restart, and a game
// server's report), be told why and until when a mission is refused, exchange, be told
// when to try again while gifts are down, be told a gift ran out, use a gift, read the
// e-mails, log out; every screen scanned for accessibility problems, laid out at 375 px,
// driven by keyboard, and photographed into test-output/.

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
/** gamectl as the studio's game server (a service account), once made. */
let gameServer;
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
/** A mission's card in the catalog. */
const card = (title) =>
  page.getByRole("region", { name: "Missions to achieve" }).getByRole("listitem").filter({ has: page.getByRole("heading", { name: title, exact: true }) });
/** A time as the page writes it, in the browser's locale and zone. */
const shown = (date) =>
  page.evaluate((ms) => new Date(ms).toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }), date.getTime());
/** When the default catalog's next game day starts: 00:00 UTC tomorrow. */
function nextDay() {
  const d = new Date();
  d.setUTCHours(24, 0, 0, 0);
  return d;
}

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

  it("shows the missions: each one's rule, what can be achieved now, and what the game reports", async () => {
    await waitText(card("Log in today").getByText(/^Available now/), /^Available now$/);
    await page.getByText("Days start at 00:00 (UTC); weeks on Monday.").waitFor();
    const rules = { "Log in today": "Once a day", "Finish the tutorial": "Once", "Win your first match": "Once", "Play seven days in a row": "Once a week", "Play a match": "Any number of times" };
    for (const [title, rule] of Object.entries(rules)) {
      await card(title).getByText(rule, { exact: true }).waitFor();
    }
    // A player reports only player missions: a button for those, none for the game's.
    for (const title of ["Log in today", "Finish the tutorial"]) {
      await button(`Achieve ${title}`, card(title)).waitFor();
    }
    for (const title of ["Win your first match", "Play seven days in a row", "Play a match"]) {
      await card(title).getByText("Reported by the game when it happens.").waitFor();
      assert.equal(await button(`Achieve ${title}`).count(), 0, `no button for ${title}`);
      assert.equal(await card(title).getByText(/^Available now/).count(), 0, `${title} is not the player's to do`);
    }
    await noSeriousViolations("the missions to achieve");
  });

  it("achieves a mission and shows it ISSUED without a reload, and that it counts once", async () => {
    await page.evaluate(() => {
      window.notReloaded = true;
    });
    await button("Achieve Finish the tutorial").click();
    const item = entry("Finish the tutorial");
    await waitText(fact(item, "Reward"), /^20 points, Issued$/);
    await waitText(total("Available"), /^20$/);
    await waitText(card("Finish the tutorial").getByText(/^Done/), /^Done: it counts once$/);
    assert.equal(await button("Achieve Finish the tutorial").count(), 0, "no button for what cannot be done again");
    assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  });

  it("shows, live, a mission achieved by another client, and explains the refusal of a stale button with the next time", async () => {
    // The page's view of what can be achieved is held back, as when its refresh has not
    // come yet, while another client logs alice in today.
    const AVAILABILITY = "**/game.mission.v1.MissionService/GetAvailability";
    await page.route(AVAILABILITY, (r) => r.abort());
    try {
      await system.gamectlAs(customer, password, "achieve", "daily-login");
      await waitText(fact(entry("Log in today"), "Reward"), /^10 points, Issued$/);
      await waitText(total("Available"), /^30$/);
    } finally {
      await page.unroute(AVAILABILITY);
    }
    const daily = card("Log in today");
    await button("Achieve Log in today", daily).click();
    const next = await shown(nextDay());
    const said = await waitText(daily.getByRole("alert"), /already achieved/);
    assert.equal(said, `“Log in today” was already achieved today. You can try again from ${next}.`);
    assert.doesNotMatch(said, RAW_CODE);
    // ... and the page asks again: no button now, and when next.
    await waitText(daily.getByText(/^Done today/), new RegExp(`^Done today · next from ${next}$`));
    assert.equal(await button("Achieve Log in today").count(), 0);
    await noSeriousViolations("a refused mission");
    await shot("03-refused");
  });

  it("reconnects after the gateway restarts and shows a game server's report live", async () => {
    gameServer = await system.gameServer("match-server");
    const before = await system.pidOf("gateway");
    assert.ok(before, "the gateway runs under gamectl up");
    process.kill(before, "SIGKILL");
    await waitText(page.getByText(/reconnecting/), /Connection lost; reconnecting/);
    await eventually("the supervisor restarted the gateway", async () => {
      const now = await system.pidOf("gateway");
      return now && now !== before;
    });
    await waitText(page.getByText(/^Live:/), /changes appear/, 30_000);
    // The studio's game server says alice won: only it may.
    await gameServer("achieve", customer, "first-win");
    await waitText(fact(entry("Win your first match"), "Reward"), /^50 points, Issued$/);
    await waitText(card("Win your first match").getByText(/^Done/), /^Done: it counts once$/);
    assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  });

  it("exchanges a reward for a coffee and shows the gift", async () => {
    const item = entry("Log in today");
    await button("Exchange", item).click();
    const coffee = button("Coffee", item);
    await coffee.waitFor();
    // What this reward cannot buy is said, not offered.
    await item.getByText("Movie ticket: 50 points, more than this reward’s 10").waitFor();
    await noSeriousViolations("choosing a gift");
    assert.equal(await coffee.evaluate((b) => b === document.activeElement), true, "focus moved to the first gift");
    await coffee.click();
    await waitText(fact(item, "Gift"), /^Coffee, Issued, ready to use$/);
    await waitText(fact(item, "Reward"), /^10 points, Exchanged$/);
    await waitText(total("Exchanged"), /^10$/);
    await waitText(total("Available"), /^70$/);
    await shot("04-exchanged");
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
      await shot("05-try-again");
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

  it("explains out of stock: offered a moment ago, gone when pressed, the reward unchanged", async () => {
    const item = entry("Win your first match");
    await button("Exchange", item).click();
    const badge = button("Founder's badge", item);
    await badge.waitFor();
    await item.getByText("20 points, 3 left, one per customer").waitFor();
    // While alice chooses, three other players take the last three.
    await Promise.all(["bo", "cy", "di"].map((c) => system.playerTakes(c, "tutorial-complete", "founders-badge")));
    await badge.click();
    const said = await waitText(item.getByRole("alert"), /out of stock/);
    assert.equal(said, "Founder's badge is out of stock: none are left. Your reward is unchanged.");
    assert.equal(await fact(item, "Reward").textContent(), "50 points, Issued");
    await noSeriousViolations("a gift out of stock");
    await shot("06-out-of-stock");
    // Choosing again, the page knows: no button for it.
    await button("Exchange", item).click();
    await item.getByText("Founder's badge: out of stock, none are left").waitFor();
    assert.equal(await badge.count(), 0);
    await button("Cancel", item).click();
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
    await shot("07-my-page");
  });

  it("fits a 375 px wide screen and works by keyboard alone", async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `no sideways scrolling: the page is ${width} px wide`);
    await noSeriousViolations("my page at 375 px");
    await shot("08-phone");

    // Tab to the one reward still to exchange, open the choice, Tab to Cancel: focus
    // goes into the choice and comes back.
    const active = () => page.evaluate(() => document.activeElement?.textContent ?? "");
    await page.getByRole("heading", { name: "My page", level: 1 }).focus();
    await eventually("Tab reaches Exchange", async () => {
      await page.keyboard.press("Tab");
      return (await active()) === "Exchange";
    }, 10_000);
    await page.keyboard.press("Enter");
    await eventually("focus on the first gift", async () => (await active()) === "Coffee");
    await eventually("Tab reaches Cancel", async () => {
      await page.keyboard.press("Tab");
      return (await active()) === "Cancel";
    }, 5_000);
    await page.keyboard.press("Enter");
    await eventually("focus back on Exchange", async () => (await active()) === "Exchange");
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  it("shows older missions page by page once there are more than the page holds", async () => {
    const cards = () => entries().locator("ol.cards > li");
    const before = await cards().count();
    const played = 60;
    for (let i = 0; i < played; i++) await gameServer("achieve", customer, "match-played");
    const all = before + played;
    // the live page holds the 50 most recent; the oldest (the tutorial) is not among them
    await waitText(entries().getByText(/^Showing/), new RegExp(`^Showing 50 of ${all} missions\\.$`), 30_000);
    assert.equal(await entry("Finish the tutorial").count(), 0, "the oldest is not shown yet");
    await button("Show older").click();
    await waitText(entries().getByText(/^Showing/), new RegExp(`^Showing ${all} of ${all} missions\\.$`));
    assert.equal(await cards().count(), all);
    await entry("Finish the tutorial").waitFor();
    assert.equal(await button("Show older").count(), 0, "nothing older left");
    const titles = await cards().getByRole("heading").allTextContents();
    assert.equal(titles.at(-1), "Finish the tutorial", "newest first, the oldest last");
    await noSeriousViolations("my page with older missions");
    await shot("10-older-missions");
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
