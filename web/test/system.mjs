// The whole system for a browser test: `gamectl up` with the real binaries (from the
// cargo target dir) on free ports with a temporary data dir, its children found by
// parent pid, and gamectl as a second, independent gRPC client.

import { spawn, execFile } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Where cargo put the binaries: GAME_BIN_DIR, else $CARGO_TARGET_DIR/debug, else ../target/debug. */
export function binDir() {
  if (process.env.GAME_BIN_DIR) return process.env.GAME_BIN_DIR;
  const target = process.env.CARGO_TARGET_DIR ?? resolve(import.meta.dirname, "../../target");
  return join(target, "debug");
}

function portFree(port) {
  return new Promise((ok) => {
    const s = createServer();
    s.once("error", () => ok(false));
    s.listen(port, "127.0.0.1", () => s.close(() => ok(true)));
  });
}

/** A base port whose gamectl ports (base + 0..7, base + 100) are all free. */
async function freeBase() {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    const ports = [0, 1, 2, 3, 4, 5, 6, 7, 100].map((o) => base + o);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error("no free ports");
}

export async function startSystem(logFile) {
  const dataDir = await mkdtemp(join(tmpdir(), "mypage-test-"));
  const base = await freeBase();
  const gamectl = join(binDir(), "gamectl");
  const child = spawn(gamectl, ["--data-dir", dataDir, "up", "--base-port", String(base)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = createWriteStream(logFile);
  child.stderr.pipe(log);
  let out = "";
  const gateway = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`gamectl up not ready after 90 s:\n${out}`)), 90_000);
    child.on("error", (e) => fail(new Error(`cannot start ${gamectl} (build it: cargo build --workspace --bins): ${e.message}`)));
    child.on("exit", (code) => fail(new Error(`gamectl up exited (${code}):\n${out}`)));
    child.stdout.on("data", (d) => {
      out += d;
      log.write(d);
      const m = /use the gateway: (http:\/\/\S+)/.exec(out);
      if (m && out.includes("ready: all services SERVING")) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
  });
  return new System(child, dataDir, gateway, gamectl);
}

class System {
  constructor(child, dataDir, gateway, gamectl) {
    this.child = child;
    this.dataDir = dataDir;
    /** The address `gamectl up` prints: the page is at its path `/`. */
    this.gateway = gateway;
    this.gamectl = gamectl;
    this.exited = new Promise((ok) => child.on("exit", ok));
  }

  /** The pid of the running child of `gamectl up` for role `name` (`gamectl serve <name>`), e.g. "gift". */
  async pidOf(name) {
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
      // pid (comm) state ppid ...
      const m = /^\d+ \((.*)\) (\S) (\d+)/.exec(stat);
      if (!m || m[2] === "Z" || Number(m[3]) !== this.child.pid) continue;
      const args = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).split("\0");
      if (args[1] === "serve" && args[2] === name) return Number(entry);
    }
    return null;
  }

  /** gamectl as another client of the same gateway (plain gRPC, its own token file). */
  async gamectlAs(customer, password, ...args) {
    const env = { ...process.env, GAMECTL_PASSWORD: password };
    await this.#gamectl(customer, ["login", customer], env);
    return this.#gamectl(customer, args, env);
  }

  /** gamectl with the token file named `who` (logged in before), `args` after the common flags. */
  async #gamectl(who, args, env = process.env) {
    const common = ["--endpoint", this.gateway, "--data-dir", this.dataDir, "--token-file", join(this.dataDir, `token-${who}`)];
    const { stdout } = await run(this.gamectl, [...common, ...args], { env });
    return stdout;
  }

  /**
   * A game server, as a studio runs one: the first admin (its password is in the data
   * dir) creates the service account `svc-<name>`, which logs in with its secret.
   * Returns gamectl as that game server, e.g. `gs("achieve", "alice", "first-win")`.
   */
  async gameServer(name) {
    const password = (await readFile(join(this.dataDir, "admin.password"), "utf8")).trim();
    await this.#gamectl("admin", ["login", "admin", "--password", password]);
    const account = JSON.parse(await this.#gamectl("admin", ["--json", "service-account", "create", name]));
    await this.#gamectl(name, ["login", "--service-account", account.clientId, "--secret", account.clientSecret]);
    return (...args) => this.#gamectl(name, args);
  }

  /**
   * A new player, registered and logged in once (logins without a token are limited per
   * address), who achieves `mission` and exchanges its reward for `gift`.
   */
  async playerTakes(customer, mission, gift) {
    const password = "another horse battery";
    await this.#gamectl(customer, ["register", customer, "--password", password]);
    await this.#gamectl(customer, ["login", customer, "--password", password]);
    await this.#gamectl(customer, ["achieve", mission]);
    for (let tries = 0; ; tries++) {
      const wallet = JSON.parse(await this.#gamectl(customer, ["--json", "wallet"]));
      const item = (wallet.wallet?.items ?? []).find((i) => i.status === "WALLET_ITEM_STATUS_ISSUED");
      if (item) return this.#gamectl(customer, ["exchange", item.rewardId, gift]);
      if (tries > 100) throw new Error(`${customer}'s reward never arrived`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop() {
    if (this.child.exitCode === null) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 30_000);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(this.dataDir, { recursive: true, force: true });
  }
}
