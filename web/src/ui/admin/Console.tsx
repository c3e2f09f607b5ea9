// The operator's console at /admin: Players, Dead letters, Audit. For tokens with the
// admin role; anyone else is told so politely (and the services refuse their calls
// anyway: the page is never the guard).

import { useEffect, useState } from "preact/hooks";
import { roleOf } from "../../session";
import type { Session } from "../../session";
import { Audit } from "./Audit";
import { DeadLetters } from "./DeadLetters";
import { Player, Players } from "./Players";

type Route = { screen: "players"; customer: string } | { screen: "dead-letters" } | { screen: "audit"; subject: string };

function parse(path: string, search: string): Route {
  const rest = path.replace(/^\/admin\/?/, "");
  if (rest.startsWith("dead-letters")) return { screen: "dead-letters" };
  if (rest.startsWith("audit")) return { screen: "audit", subject: new URLSearchParams(search).get("subject") ?? "" };
  const m = /^players\/(.+)$/.exec(rest);
  return { screen: "players", customer: m ? decodeURIComponent(m[1] ?? "") : "" };
}

/** Goes to `path` inside the console without reloading the page. */
export function go(path: string): void {
  history.pushState(null, "", path);
  dispatchEvent(new PopStateEvent("popstate"));
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.pathname, location.search));
  useEffect(() => {
    const on = () => setRoute(parse(location.pathname, location.search));
    addEventListener("popstate", on);
    return () => removeEventListener("popstate", on);
  }, []);
  return route;
}

/** A link that moves inside the console. */
export function Link({ href, children, current }: { href: string; children: preact.ComponentChildren; current?: boolean }) {
  return (
    <a
      href={href}
      aria-current={current ? "page" : undefined}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        go(href);
      }}
    >
      {children}
    </a>
  );
}

export function Console({ session, onSignedOut }: { session: Session; onSignedOut: (why: string) => void }) {
  const route = useRoute();
  const admin = roleOf(session.token) === "admin";

  const bar = (
    <header class="bar">
      <span class="brand">Game Rewards console</span>
      <span class="muted">{session.customerId}</span>
      <button type="button" class="secondary" onClick={() => onSignedOut("You are logged out.")}>
        Log out
      </button>
    </header>
  );

  if (!admin) {
    return (
      <>
        {bar}
        <main class="narrow">
          <h1>Not for this account</h1>
          <p>
            This console is for administrators. You are logged in as {session.customerId}, who is not one, so there is nothing
            here for you.
          </p>
          <p>
            <a href="/">Go to my page</a>
          </p>
        </main>
      </>
    );
  }

  return (
    <>
      {bar}
      <nav aria-label="Console" class="tabs">
        <Link href="/admin" current={route.screen === "players"}>
          Players
        </Link>
        <Link href="/admin/dead-letters" current={route.screen === "dead-letters"}>
          Dead letters
        </Link>
        <Link href="/admin/audit" current={route.screen === "audit"}>
          Audit
        </Link>
      </nav>
      <main>
        {route.screen === "players" &&
          (route.customer ? <Player key={route.customer} customerId={route.customer} onSignedOut={onSignedOut} /> : <Players />)}
        {route.screen === "dead-letters" && <DeadLetters onSignedOut={onSignedOut} />}
        {route.screen === "audit" && <Audit key={route.subject} subject={route.subject} onSignedOut={onSignedOut} />}
      </main>
    </>
  );
}
