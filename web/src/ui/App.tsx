// Which screen: log in, then the signed-in customer's page, or at /admin the operator's
// console (the same app and build; it routes on location.pathname).

import { useState } from "preact/hooks";
import * as session from "../session";
import type { Session } from "../session";
import { Console, isConsolePath } from "./admin/Console";
import { Login } from "./Login";
import { MyPage } from "./MyPage";

export function App() {
  const [who, setWho] = useState<Session | null>(() => session.restore());
  // Why the customer was signed out (an expired token), shown on the login screen.
  const [farewell, setFarewell] = useState("");
  const inConsole = isConsolePath(location.pathname);

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
  return inConsole ? <Console session={who} onSignedOut={signOut} /> : <MyPage session={who} onSignedOut={signOut} />;
}
