// "My page": totals, the missions one can achieve (and when next), what became of each
// achieved mission, the e-mails sent; kept current by WatchMyPage, reconnecting whenever
// the stream breaks.

import { useEffect, useRef, useState } from "preact/hooks";
import { explain } from "../api/errors";
import * as gift from "../api/gift";
import type { CatalogGift } from "../api/gift";
import * as mission from "../api/mission";
import type { Availability, Catalog, CatalogMission } from "../api/mission";
import { GiftStatus, older as olderEntries, watch } from "../api/mypage";
import type { Entry, Older, Page } from "../api/mypage";
import * as notification from "../api/notification";
import type { Email } from "../api/notification";
import type { Session } from "../session";
import { EntryItem } from "./Entry";
import { Emails } from "./Emails";
import { Missions } from "./Missions";
import { sleep, retrying } from "./wait";
import { missionRefusal } from "./words";

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
  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [availability, setAvailability] = useState<Map<string, Availability> | null>(null);
  const [gifts, setGifts] = useState<CatalogGift[] | null>(null);
  const [emails, setEmails] = useState<Email[] | null>(null);
  const [notice, setNotice] = useState("");
  const [achieving, setAchieving] = useState("");
  const [missionProblem, setMissionProblem] = useState({ code: "", text: "" });
  // Older entries, page by page ("Show older"); null until the first is asked for.
  const [older, setOlder] = useState<Older | null>(null);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [olderProblem, setOlderProblem] = useState("");
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
    void retrying(() => mission.catalog(), stop.signal, keepTrying).then((c) => c && setCatalog(c));
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

  // Where the customer stands with each mission: asked again whenever that may have
  // changed (a mission achieved here or anywhere, a next time come). Best effort: while
  // it cannot be had, the last answer stays and the server still decides every press.
  const asking = useRef<AbortController | null>(null);
  async function refreshAvailability() {
    asking.current?.abort();
    const mine = new AbortController();
    asking.current = mine;
    try {
      const a = await mission.availability(me, mine.signal);
      if (!mine.signal.aborted) setAvailability(a);
    } catch (err) {
      if (!mine.signal.aborted) keepTrying(err);
    }
  }
  const achieved = page?.entries.length ?? -1;
  useEffect(() => {
    void refreshAvailability();
    return () => asking.current?.abort();
  }, [me, achieved]);
  // ... and when the soonest "next from" comes (a new game day, an event opening).
  const soonest = Math.min(...[...(availability?.values() ?? [])].map((a) => (a.available ? Infinity : (a.nextAt?.getTime() ?? Infinity))));
  useEffect(() => {
    if (!Number.isFinite(soonest)) return;
    // setTimeout's limit is ~24.8 days; a later time is looked at again then.
    const t = setTimeout(() => void refreshAvailability(), Math.min(Math.max(soonest - Date.now(), 0) + 1000, 2 ** 31 - 1));
    return () => clearTimeout(t);
  }, [soonest]);

  const title = (code: string) => catalog?.missions.find((m) => m.code === code)?.title ?? code;

  async function achieve(m: CatalogMission) {
    if (achieving) return;
    setAchieving(m.code);
    setMissionProblem({ code: "", text: "" });
    try {
      await mission.achieve(me, m.code);
      setNotice(`Recorded “${m.title}”; its reward is on its way.`);
    } catch (err) {
      const p = explain(err, "achieve", (r) => missionRefusal(r, catalog?.missions ?? [], title));
      if (p.signedOut) return onSignedOut(p.text);
      setMissionProblem({ code: m.code, text: p.text });
    } finally {
      setAchieving("");
      void refreshAvailability();
    }
  }

  // The gifts' catalog again (what is left of each stock), e.g. before choosing a gift.
  async function refreshGifts() {
    try {
      setGifts(await gift.catalog());
    } catch {
      // The last catalog stays; the server still refuses what is gone.
    }
  }

  // The next page of older entries: the first page is the recent entries the live page
  // shows, so the first press starts after them.
  async function showOlder() {
    if (loadingOlder) return;
    setLoadingOlder(true);
    setOlderProblem("");
    try {
      const token = older ? older.next : (await olderEntries(me, "")).next;
      const got = token ? await olderEntries(me, token) : { entries: [], next: "" };
      setOlder({ entries: [...(older?.entries ?? []), ...got.entries], next: got.next });
    } catch (err) {
      const p = explain(err, "load");
      if (p.signedOut) return onSignedOut(p.text);
      setOlderProblem(p.text);
    } finally {
      setLoadingOlder(false);
    }
  }

  const titles = new Map((catalog?.missions ?? []).map((m) => [m.code, m.title]));
  const recentIds = new Set((page?.entries ?? []).map((e) => e.missionId));
  // An entry may have moved out of the recent ones since it was read: shown once.
  const olderShown: Entry[] = (older?.entries ?? []).filter((e) => !recentIds.has(e.missionId));
  const listed = (page?.entries ?? []).concat(olderShown);
  const moreOlder = page !== null && (older ? older.next !== "" : page.entryCount > BigInt(page.entries.length));
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
          <Missions
            catalog={catalog}
            availability={availability}
            achieving={achieving}
            problem={missionProblem}
            onAchieve={(m) => void achieve(m)}
          />
        </section>

        <section aria-labelledby="entries-h">
          <h2 id="entries-h">Your missions, newest first</h2>
          {page && page.entries.length === 0 && <p>Nothing yet: achieve a mission above.</p>}
          {page && page.entries.length > 0 && (
            <ol class="cards">
              {listed.map((e) => (
                <EntryItem
                  key={e.missionId}
                  entry={e}
                  title={titles.get(e.missionCode) ?? e.missionCode}
                  gifts={gifts ?? []}
                  onGiftsStale={refreshGifts}
                  customerId={me}
                  onNotice={setNotice}
                  onSignedOut={onSignedOut}
                />
              ))}
            </ol>
          )}
          {!page && <p>Loading…</p>}
          {page && page.entryCount > BigInt(page.entries.length) && (
            <p class="count">
              Showing {listed.length} of {String(page.entryCount)} missions.
            </p>
          )}
          {moreOlder && (
            <button type="button" class="secondary" onClick={() => void showOlder()} disabled={loadingOlder}>
              {loadingOlder ? "Loading older missions…" : "Show older"}
            </button>
          )}
          {olderProblem && (
            <p role="alert" class="problem">
              {olderProblem}
            </p>
          )}
        </section>

        <Emails emails={emails} />
      </main>
    </>
  );
}
