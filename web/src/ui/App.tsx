// Which screen: log in, or the signed-in customer's page.

import { useState } from "preact/hooks";
import * as session from "../session";
import type { Session } from "../session";
import { Login } from "./Login";
import { MyPage } from "./MyPage";

export function App() {
  const [who, setWho] = useState<Session | null>(() => session.restore());
  // Why the customer was signed out (an expired token), shown on the login screen.
  const [farewell, setFarewell] = useState("");

  if (!who) {
    return (
      <Login
        notice={farewell}
        onSignedIn={(s) => {
          session.start(s);
          setFarewell("");
          setWho(s);
        }}
      />
    );
  }
  return (
    <MyPage
      session={who}
      onSignedOut={(why) => {
        session.end();
        setFarewell(why);
        setWho(null);
      }}
    />
  );
}
