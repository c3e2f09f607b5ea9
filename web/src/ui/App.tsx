// Which screen: log in, then the signed-in customer's page, or at /admin the operator's
// console (the same app and build; it routes on location.pathname). The console is a
// chunk of its own, loaded only at /admin: a player's page does not download it.

import { useEffect, useState } from "preact/hooks";
import * as session from "../session";
import type { Session } from "../session";
import { Login } from "./Login";
import { MyPage } from "./MyPage";

type ConsoleScreen = typeof import("./admin/Console").Console;

function isConsolePath(path: string): boolean {
  return path === "/admin" || path.startsWith("/admin/");
}

export function App() {
  const [who, setWho] = useState<Session | null>(() => session.restore());
  // Why the customer was signed out (an expired token), shown on the login screen.
  const [farewell, setFarewell] = useState("");
  const inConsole = isConsolePath(location.pathname);
  const [Console, setConsole] = useState<{ screen: ConsoleScreen } | null>(null);
  const [loadProblem, setLoadProblem] = useState("");

  useEffect(() => {
    if (!inConsole || !who || Console) return;
    import("./admin/Console").then(
      (m) => setConsole({ screen: m.Console }),
      () => setLoadProblem("The console could not be loaded. Please reload the page."),
    );
  }, [inConsole, who]);

  if (!who) {
    return (
      <Login
        notice={farewell}
        forConsole={inConsole}
        onSignedIn={(s) => {
          session.start(s);
          setFarewell("");
          setWho(s);
        }}
      />
    );
  }
  const signOut = (why: string) => {
    session.end();
    setFarewell(why);
    setWho(null);
  };
  if (!inConsole) return <MyPage session={who} onSignedOut={signOut} />;
  if (!Console) {
    return (
      <main class="narrow" aria-busy={!loadProblem}>
        <h1>Game Rewards console</h1>
        <p role="alert" class="problem">
          {loadProblem}
        </p>
      </main>
    );
  }
  return <Console.screen session={who} onSignedOut={signOut} />;
}
