// The operator's console at /admin in a real Chromium against the real system
// (`gamectl up`): the first admin logs in, finds a player, corrects their points, revokes
// their tokens (the player's page, open in another browser context, ends within the
// revocation refresh), reads the audit entry of that revocation, lists the dead letters;
// a player who opens /admin is refused politely (and the services refuse their calls).
// Every screen is scanned by axe, laid out at 375 px and 1440 px, and photographed into
// test-output/ (and docs/ with SHOTS_TO_DOCS=1, for the README).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import AxeBuilder from "@axe-core/playwright";
import { chromium } from "playwright-core";
import { startSystem } from "./system.mjs";

const OUT = join(import.meta.dirname, "..", "test-output");
const DOCS = join(import.meta.dirname, "..", "..", "docs");
mkdirSync(OUT, { recursive: true });

const player = "bob";
const password = "correct horse battery";
const RAW_CODE = /\b(UNAVAILABLE|UNAUTHENTICATED|FAILED_PRECONDITION|RESOURCE_EXHAUSTED|INVALID_ARGUMENT|PERMISSION_DENIED|NOT_FOUND|INTERNAL|UNKNOWN)\b|\[[a-z_]+\]|grpc/;

let system;
let browser;
/** The admin's console. */
let page;
/** The player's own page, in a second browser context (its own sessionStorage). */
let mine;
const problems = [];

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

const button = (name, scope = page) => scope.getByRole("button", { name, exact: true });
const region = (name) => page.getByRole("region", { name });

async function noSeriousViolations(screen, p = page) {
  const result = await new AxeBuilder({ page: p }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]).analyze();
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    [],
    `accessibility of ${screen}`,
  );
}

/** At 375 px: no sideways scrolling and still axe-clean; then back to 1440 px. */
async function fitsAPhone(screen, p = page) {
  await p.setViewportSize({ width: 375, height: 812 });
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `${screen}: no sideways scrolling at 375 px, the page is ${width} px wide`);
  await noSeriousViolations(`${screen} at 375 px`, p);
  await shot(`${screen}-phone`, p);
  await p.setViewportSize({ width: 1440, height: 900 });
}

async function shot(name, p = page) {
  const path = join(OUT, `${name}.png`);
  await p.screenshot({ path, fullPage: true });
  if (process.env.SHOTS_TO_DOCS === "1" && !name.endsWith("-phone")) copyFileSync(path, join(DOCS, `${name}.png`));
}

function watch(p) {
  p.on("console", (m) => {
    if (m.type() === "error" || /Content.Security.Policy/i.test(m.text())) problems.push(m.text());
  });
  p.on("pageerror", (e) => problems.push(String(e)));
}

async function logIn(p, who, secret) {
  await p.getByLabel("Customer id").fill(who);
  await p.getByLabel("Password").fill(secret);
  await button("Log in", p).click();
}

before(async () => {
  system = await startSystem(join(OUT, "admin-system.log"));
  browser = await chromium.launch({
    executablePath: execFileSync("which", ["chromium"], { encoding: "utf8" }).trim(),
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await (await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: "en-GB" })).newPage();
  mine = await (await browser.newContext({ viewport: { width: 1100, height: 900 }, locale: "en-GB" })).newPage();
  watch(page);
  watch(mine);
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

describe("the operator's console in the browser", () => {
  it("is the same page at /admin and under it, with the same policy", async () => {
    const root = await (await fetch(`${system.gateway}/`)).text();
    for (const path of ["/admin", "/admin/players/bob", "/admin/audit"]) {
      const res = await fetch(`${system.gateway}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get("content-security-policy"), /script-src 'self'.*connect-src 'self'.*frame-ancestors 'none'/);
      assert.equal(await res.text(), root, path);
    }
  });

  it("a player registers and has their page open in another browser", async () => {
    await mine.goto(`${system.gateway}/`);
    await mine.getByLabel("Customer id").fill(player);
    await mine.getByLabel("Password").fill(password);
    await button("Register", mine).click();
    await mine.getByRole("heading", { name: "My page", level: 1 }).waitFor();
    await button("Achieve Finish the tutorial", mine).click();
    await mine.getByText(/^Live:/).waitFor();
  });

  it("an admin logs in at /admin and finds the player", async () => {
    const secret = (await readFile(join(system.dataDir, "admin.password"), "utf8")).trim();
    await page.goto(`${system.gateway}/admin`);
    await page.getByRole("heading", { name: "Game Rewards console" }).waitFor();
    await noSeriousViolations("the console's log-in");
    await logIn(page, "admin", secret);
    await page.getByRole("heading", { name: "Players", level: 1 }).waitFor();
    await noSeriousViolations("the players screen");
    await shot("admin-players-lookup");

    // by keyboard: the lookup field is reachable with Tab from the heading, Enter submits
    await page.getByRole("heading", { name: "Players", level: 1 }).focus();
    await eventually("Tab reaches the customer id", async () => {
      await page.keyboard.press("Tab");
      return page.evaluate(() => document.activeElement?.id === "lookup");
    }, 5_000);
    await page.keyboard.type(player);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: `Player ${player}`, level: 1 }).waitFor();
    assert.equal(new URL(page.url()).pathname, `/admin/players/${player}`);
    await eventually("the tutorial among the missions", async () => {
      if (/tutorial-complete/.test(await region("Missions, newest first").innerText())) return true;
      await page.reload();
      await page.getByRole("heading", { name: `Player ${player}`, level: 1 }).waitFor();
      return false;
    });
  });

  it("corrects the player's points with a reason, and the ledger shows it", async () => {
    await button("Adjust points").click();
    await eventually("a refusal without an amount", async () => /Amount/.test((await page.getByRole("alert").allTextContents()).join(" ")));
    await page.getByLabel("Amount (negative takes points away)").fill("25");
    await page.getByLabel("Reason for the adjustment").fill("goodwill for the outage");
    await button("Adjust points").click();
    await page.getByRole("status").getByText(/Adjusted by \+25 points; the balance is now \d+\./).waitFor();
    await region("Ledger, newest first").getByText(/\+25 .*by admin · “goodwill for the outage”/).waitFor();
    await noSeriousViolations("a player's page");
    await shot("admin-players");
    await fitsAPhone("admin-players");
  });

  it("revokes the player's tokens: their open page stops working within the revocation refresh", async (t) => {
    await mine.getByText(/^Live:/).waitFor();
    const started = Date.now();
    await button("Revoke tokens").click();
    await page.getByRole("status").getByText(new RegExp(`^${player}'s tokens are revoked`)).waitFor();
    await mine.getByText("Your session has ended. Please log in again.").waitFor({ timeout: 6_000 });
    const took = Date.now() - started;
    t.diagnostic(`the player's page was logged out ${took} ms after "Revoke tokens"`);
    assert.ok(took < 6_000, `${took} ms`);
    await mine.getByLabel("Customer id").waitFor();
  });

  it("reads the audit entry of that revocation, filtered by subject", async () => {
    await page.getByRole("link", { name: "Audit" }).click();
    await page.getByRole("heading", { name: "Audit", level: 1 }).waitFor();
    await page.getByLabel("Subject (a customer id; empty for everyone)").fill(player);
    await button("Filter").click();
    const list = region(`Entries about ${player}, newest first`);
    const first = list.getByRole("listitem").first();
    await eventually("the revocation on top", async () => /admin tokens revoked bob/.test(await first.innerText()));
    assert.equal(new URL(page.url()).search, `?subject=${player}`);
    const lines = await list.getByRole("listitem").allInnerTexts();
    assert.ok(lines.every((l) => / bob( ·|$)/.test(l)), `only entries about bob: ${lines.join(" | ")}`);
    await noSeriousViolations("the audit screen");
    await shot("admin-audit");
    await fitsAPhone("admin-audit");
  });

  it("refunds a player's gift with a reason, and grants and revokes the admin role", async () => {
    // carol exchanges her tutorial reward for a coffee (gamectl, as she would)
    await system.playerTakes("carol", "tutorial-complete", "coffee");
    await page.getByRole("link", { name: "Players" }).click();
    await page.getByLabel("Customer id").fill("carol");
    await button("Look up").click();
    await page.getByRole("heading", { name: "Player carol", level: 1 }).waitFor();
    await region("Gifts").getByText(/^Coffee · issued/).waitFor();
    assert.match(await page.getByLabel("Gift", { exact: true }).innerText(), /^Coffee \(/);
    await button("Refund gift").click();
    await eventually("a refusal without a reason", async () => /Reason for the refund/.test((await page.getByRole("alert").allTextContents()).join(" ")));
    await page.getByLabel("Reason for the refund").fill("sold out at the shop");
    await button("Refund gift").click();
    await page.getByRole("status").getByText(/^Coffee refunded: \d+ points back\.$/).waitFor();
    await region("Gifts").getByText(/^Coffee · cancelled/).waitFor();
    await region("Ledger, newest first").getByText(/refunded \+\d+ .*by admin · “sold out at the shop”/).waitFor();
    assert.match(await page.getByLabel("Gift", { exact: true }).innerText(), /No issued gift to refund/);

    await button("Grant admin role").click();
    await page.getByRole("status").getByText("carol is now an administrator.").waitFor();
    await button("Revoke admin role").click();
    await page.getByRole("status").getByText("carol is no longer an administrator.").waitFor();
    await button("Revoke admin role").click();
    await page.getByRole("status").getByText("carol was not an administrator.").waitFor();
  });

  it("lists the dead letters (none wait in a healthy system)", async () => {
    await page.getByRole("link", { name: "Dead letters" }).click();
    await page.getByRole("heading", { name: "Dead letters", level: 1 }).waitFor();
    await region("Waiting, oldest first").getByText("No dead letters are waiting.").waitFor();
    assert.ok(await button("Redrive all").isDisabled());
    await page.getByLabel("Consumer (empty for all)").fill("notification-gift-issued");
    await button("List").click();
    await region("Waiting for notification-gift-issued, oldest first").getByText("No dead letters are waiting.").waitFor();
    await noSeriousViolations("the dead letters screen");
    await shot("admin-dead-letters");
    await fitsAPhone("admin-dead-letters");
    // back and forward move between the screens
    await page.goBack();
    await page.getByRole("heading", { name: "Player carol", level: 1 }).waitFor();
    await page.goForward();
    await page.getByRole("heading", { name: "Dead letters", level: 1 }).waitFor();
  });

  it("a player who opens /admin is refused politely, and the services refuse their calls", async () => {
    await mine.goto(`${system.gateway}/admin/audit`);
    await logIn(mine, player, password);
    await mine.getByText(/^This console is for administrators\./).waitFor();
    assert.equal(await mine.getByRole("link", { name: "Audit" }).count(), 0);
    await noSeriousViolations("the refusal", mine);
    await shot("admin-refused", mine);
    await assert.rejects(system.gamectlAs(player, password, "audit"), /PERMISSION_DENIED|permission|administrator|admin/i);
  });

  it("logged nothing to the console, broke no rule of the security policy, showed no raw code", async () => {
    assert.deepEqual(problems, []);
    assert.doesNotMatch(await page.locator("body").innerText(), RAW_CODE);
  });
});
