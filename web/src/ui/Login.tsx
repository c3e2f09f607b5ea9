// Register or log in: "Customer id", "Password", and the buttons "Log in" and "Register".

import { useEffect, useRef, useState } from "preact/hooks";
import * as auth from "../api/auth";
import { explain } from "../api/errors";
import type { Session } from "../session";

export function Login({ notice, forConsole = false, onSignedIn }: { notice: string; forConsole?: boolean; onSignedIn: (s: Session) => void }) {
  const [customerId, setCustomerId] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState("");
  const first = useRef<HTMLInputElement>(null);

  useEffect(() => {
    document.title = forConsole ? "Log in · Console · Game Rewards" : "Log in · Game Rewards";
    first.current?.focus();
  }, []);

  async function go(doing: "log in" | "register") {
    if (busy) return;
    const id = customerId.trim();
    if (!id || !password) {
      setProblem(!id ? "Please enter your customer id." : "Please enter your password.");
      return;
    }
    setBusy(true);
    setProblem("");
    try {
      if (doing === "register") await auth.register(id, password);
      onSignedIn(await auth.logIn(id, password));
    } catch (err) {
      setProblem(explain(err, doing).text);
      setBusy(false);
    }
  }

  return (
    <main class="narrow" aria-busy={busy}>
      <h1>{forConsole ? "Game Rewards console" : "Game Rewards"}</h1>
      <p>
        {forConsole
          ? "Log in with an administrator's customer id to look after players, dead letters and the audit log."
          : "Log in to see your missions, rewards and gifts, or register to start."}
      </p>
      {notice && <p class="notice">{notice}</p>}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void go("log in");
        }}
      >
        <label for="customer-id">Customer id</label>
        <input
          id="customer-id"
          ref={first}
          name="username"
          autocomplete="username"
          autocapitalize="none"
          spellcheck={false}
          required
          value={customerId}
          onInput={(e) => setCustomerId(e.currentTarget.value)}
        />
        <label for="password">Password</label>
        <input
          id="password"
          type="password"
          name="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        <div class="actions">
          <button type="submit">Log in</button>
          {!forConsole && (
            <button type="button" class="secondary" onClick={() => void go("register")}>
              Register
            </button>
          )}
        </div>
        <p role="alert" class="problem">
          {problem}
        </p>
      </form>
    </main>
  );
}
