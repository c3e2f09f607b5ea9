// "My page": totals, the missions one can achieve, what became of each achieved mission,
// the e-mails sent; kept current by WatchMyPage, reconnecting whenever the stream breaks.

import { useEffect, useRef, useState } from "preact/hooks";
import { explain } from "../api/errors";
import * as gift from "../api/gift";
import type { CatalogGift } from "../api/gift";
import * as mission from "../api/mission";
import type { CatalogMission } from "../api/mission";
import { GiftStatus, watch } from "../api/mypage";
import type { Page } from "../api/mypage";
import * as notification from "../api/notification";
import type { Email } from "../api/notification";
import type { Session } from "../session";
import { EntryItem } from "./Entry";
import { Emails } from "./Emails";
import { sleep, retrying } from "./wait";

type Live = "connecting" | "live" | "reconnecting";

const LIVE_TEXT: Record<Live, string> = {
  connecting: "Connecting…",
  live: "Live: changes appear as they happen.",
  reconnecting: "Connection lost; reconnecting…",
};

export function MyPage({ session, onSignedOut }: { session: Session; onSignedOut: (why: string) => void }) {
  const me = session.customerId;
  const [page, setPage] = useState<Page | null>(null);
  const [live, setLive] = useState<Live>("connecting");
  const [missions, setMissions] = useState<CatalogMission[] | null>(null);
  const [gifts, setGifts] = useState<CatalogGift[] | null>(null);
  const [emails, setEmails] = useState<Email[] | null>(null);
  const [notice, setNotice] = useState("");
  const [achieving, setAchieving] = useState("");
  const [missionProblem, setMissionProblem] = useState({ code: "", text: "" });
  const heading = useRef<HTMLHeadingElement>(null);
  const signedOut = useRef(onSignedOut);
  signedOut.current = onSignedOut;

  // A refusal that means the token is gone ends the session; anything else is retried.
  const keepTrying = (err: unknown) => {
    const p = explain(err, "load");
    if (p.signedOut) signedOut.current(p.text);
    return !p.signedOut;
  };

  useEffect(() => {
    document.title = "My page · Game Rewards";
    heading.current?.focus();
    const stop = new AbortController();
    void retrying(() => mission.catalog(), stop.signal, keepTrying).then((m) => m && setMissions(m));
    void retrying(() => gift.catalog(), stop.signal, keepTrying).then((g) => g && setGifts(g));
    void (async () => {
      let delay = 500;
      while (!stop.signal.aborted) {
        try {
          for await (const p of watch(me, stop.signal)) {
            setPage(p);
            setLive("live");
            delay = 500;
          }
        } catch (err) {
          if (stop.signal.aborted || !keepTrying(err)) return;
        }
        // The stream ended or broke (the gateway restarting, the network): the new
        // stream starts with the whole page, so nothing is missed.
        setLive("reconnecting");
        await sleep(delay, stop.signal);
        delay = Math.min(delay * 2, 5000);
      }
    })();
    return () => stop.abort();
  }, [me]);

  const firstPage = useRef(true);
  useEffect(() => {
    if (page && firstPage.current) {
      firstPage.current = false;
      // Time to first render of my page, read by the browser tests.
      performance.mark("mypage-rendered");
    }
  }, [page]);

  // E-mails go out after gift events, a moment after the page shows the gift: look
  // again until there are as many as the gifts' events (one when issued, one when used).
  const expectedEmails = (page?.entries ?? []).reduce(
    (n, e) => n + (e.giftStatus === GiftStatus.ISSUED ? 1 : e.giftStatus === GiftStatus.USED ? 2 : 0),
    0,
  );
  useEffect(() => {
    if (!page) return;
    const stop = new AbortController();
    void (async () => {
      for (let tries = 0; tries < 10 && !stop.signal.aborted; tries++) {
        const got = await retrying(() => notification.emails(me, stop.signal), stop.signal, keepTrying);
        if (!got) return;
        setEmails(got);
        if (got.length >= expectedEmails) return;
        await sleep(1000, stop.signal);
      }
    })();
    return () => stop.abort();
  }, [me, expectedEmails, page === null]);

  async function achieve(m: CatalogMission) {
    if (achieving) return;
    setAchieving(m.code);
    setMissionProblem({ code: "", text: "" });
    try {
      await mission.achieve(me, m.code);
      setNotice(`Recorded “${m.title}”; its reward is on its way.`);
    } catch (err) {
      const p = explain(err, "achieve");
      if (p.signedOut) return onSignedOut(p.text);
      setMissionProblem({ code: m.code, text: p.text });
    } finally {
      setAchieving("");
    }
  }

  const titles = new Map((missions ?? []).map((m) => [m.code, m.title]));
  return (
    <>
      <header class="bar">
        <p class="brand">Game Rewards</p>
        <p class="who">
          Signed in as <strong>{me}</strong>
        </p>
        <button type="button" class="secondary" onClick={() => onSignedOut("You are logged out.")}>
          Log out
        </button>
      </header>
      <main>
        <h1 ref={heading} tabIndex={-1}>
          My page
        </h1>
        <p role="status" class="live">
          {LIVE_TEXT[live]}
        </p>
        <p role="status" class="notice">
          {notice}
        </p>

        <section aria-labelledby="points-h">
          <h2 id="points-h">Points</h2>
          {page ? (
            <dl class="totals">
              <div>
                <dt>Issued</dt>
                <dd>{String(page.pointsIssued)}</dd>
              </div>
              <div>
                <dt>Exchanged</dt>
                <dd>{String(page.pointsExchanged)}</dd>
              </div>
              <div>
                <dt>Available</dt>
                <dd>{String(page.pointsAvailable)}</dd>
              </div>
            </dl>
          ) : (
            <p>Loading…</p>
          )}
        </section>

        <section aria-labelledby="catalog-h">
          <h2 id="catalog-h">Missions to achieve</h2>
          {missions ? (
            <ul class="cards">
              {missions.map((m) => (
                <li key={m.code} class="card">
                  <h3>{m.title}</h3>
                  <p>Reward: {String(m.points)} points</p>
                  {m.playerMayReport ? (
                    <button type="button" aria-disabled={achieving === m.code} onClick={() => void achieve(m)}>
                      Achieve {m.title}
                    </button>
                  ) : (
                    <p class="muted">Reported by the game.</p>
                  )}
                  {missionProblem.code === m.code && (
                    <p role="alert" class="problem">
                      {missionProblem.text}
                    </p>
                  )}
                </li>
              ))}
            </ul>
          ) : (
            <p>Loading…</p>
          )}
        </section>

        <section aria-labelledby="entries-h">
          <h2 id="entries-h">Your missions, newest first</h2>
          {page && page.entries.length === 0 && <p>Nothing yet: achieve a mission above.</p>}
          {page && page.entries.length > 0 && (
            <ol class="cards">
              {page.entries.map((e) => (
                <EntryItem
                  key={e.missionId}
                  entry={e}
                  title={titles.get(e.missionCode) ?? e.missionCode}
                  gifts={gifts ?? []}
                  customerId={me}
                  onNotice={setNotice}
                  onSignedOut={onSignedOut}
                />
              ))}
            </ol>
          )}
          {!page && <p>Loading…</p>}
        </section>

        <Emails emails={emails} />
      </main>
    </>
  );
}
