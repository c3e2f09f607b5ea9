// One achieved mission and what became of it: its reward (with "Exchange" while ISSUED,
// then the choice of gift: what each costs, what is left, what this reward cannot buy)
// and its gift (with "Use" while not used).

import { useEffect, useRef, useState } from "preact/hooks";
import { explain } from "../api/errors";
import type { Doing } from "../api/errors";
import * as gift from "../api/gift";
import type { CatalogGift } from "../api/gift";
import { GiftStatus, MissionStatus, RewardStatus } from "../api/mypage";
import type { Entry } from "../api/mypage";
import * as wallet from "../api/wallet";
import { giftRefusal, limit, points } from "./words";

const MISSION: Record<MissionStatus, string> = {
  [MissionStatus.UNSPECIFIED]: "Recorded",
  [MissionStatus.ACHIEVED]: "Achieved",
  [MissionStatus.REWARDED]: "Rewarded",
};
const REWARD: Record<RewardStatus, string> = {
  [RewardStatus.UNSPECIFIED]: "On its way",
  [RewardStatus.ALLOCATED]: "Allocated",
  [RewardStatus.ISSUED]: "Issued",
  [RewardStatus.EXCHANGED]: "Exchanged",
};
const GIFT: Record<GiftStatus, string> = {
  [GiftStatus.UNSPECIFIED]: "On its way",
  [GiftStatus.ISSUED]: "Issued, ready to use",
  [GiftStatus.USED]: "Used",
};

interface Props {
  entry: Entry;
  title: string;
  gifts: CatalogGift[];
  /** Asks for the gifts' catalog again (what is left of each stock). */
  onGiftsStale: () => Promise<void>;
  customerId: string;
  onNotice: (text: string) => void;
  onSignedOut: (why: string) => void;
}

export function EntryItem({ entry: e, title, gifts, onGiftsStale, customerId, onNotice, onSignedOut }: Props) {
  const [choosing, setChoosing] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState("");
  // What this screen already did, until the page (a moment later) shows it.
  const [done, setDone] = useState<"" | "exchanged" | "used">("");
  const exchangeButton = useRef<HTMLButtonElement>(null);
  const firstChoice = useRef<HTMLButtonElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const titleId = `entry-${e.missionId}`;
  const giftName = (code: string) => gifts.find((g) => g.code === code)?.name ?? code;

  // Focus follows the choice: into the list of gifts, and back to "Exchange" after it.
  const chose = useRef(false);
  useEffect(() => {
    if (choosing) firstChoice.current?.focus();
    else if (chose.current) (exchangeButton.current ?? heading.current)?.focus();
    chose.current = choosing;
  }, [choosing]);

  async function act(doing: Doing, call: () => Promise<string>) {
    if (busy) return;
    setBusy(true);
    setProblem("");
    try {
      onNotice(await call());
    } catch (err) {
      const p = explain(err, doing, (r) => giftRefusal(r, gifts));
      if (p.signedOut) return onSignedOut(p.text);
      // A gift's rules refused the exchange: nothing changed, and the choice shows
      // what is left now.
      if (p.refusal && doing === "exchange") {
        void onGiftsStale();
        return setProblem(`${p.text} Your reward is unchanged.`);
      }
      setProblem(p.text);
    } finally {
      setBusy(false);
    }
  }

  async function exchange(g: CatalogGift) {
    await act("exchange", async () => {
      try {
        await wallet.exchange(customerId, e.rewardId, g.code);
      } finally {
        setChoosing(false);
      }
      setDone("exchanged");
      return `“${title}” exchanged for ${g.name}.`;
    });
  }

  const issued = e.rewardStatus === RewardStatus.ISSUED && !e.giftId && done === "";
  // Why a gift cannot be had for this reward, if it cannot.
  const whyNot = (g: CatalogGift) =>
    g.remaining === 0
      ? "out of stock, none are left"
      : g.cost > e.points
        ? `${points(g.cost)}, more than this reward’s ${String(e.points)}`
        : "";
  const affordable = gifts.findIndex((g) => whyNot(g) === "");
  const hasGift = e.giftId !== "" || e.giftCode !== "";
  return (
    <li class="card entry" aria-busy={busy}>
      <h3 id={titleId} ref={heading} tabIndex={-1}>
        {title}
      </h3>
      <dl class="facts">
        <div>
          <dt>Mission</dt>
          <dd>{MISSION[e.missionStatus]}</dd>
        </div>
        <div>
          <dt>Reward</dt>
          <dd>
            {e.rewardId || e.points > 0n ? `${points(e.points)}, ` : ""}
            {REWARD[e.rewardStatus]}
          </dd>
        </div>
        {hasGift && (
          <div>
            <dt>Gift</dt>
            <dd>
              {giftName(e.giftCode)}, {GIFT[e.giftStatus]}
            </dd>
          </div>
        )}
      </dl>
      {issued && !choosing && (
        <button
          type="button"
          ref={exchangeButton}
          aria-describedby={titleId}
          onClick={() => {
            setChoosing(true);
            void onGiftsStale();
          }}
        >
          Exchange
        </button>
      )}
      {issued && choosing && (
        <fieldset class="choose">
          <legend>Choose a gift for {points(e.points)}</legend>
          <ul>
            {gifts.map((g, i) =>
              whyNot(g) === "" ? (
                <li key={g.code}>
                  <button type="button" ref={i === affordable ? firstChoice : null} onClick={() => void exchange(g)}>
                    {g.name}
                  </button>{" "}
                  <span class="muted">
                    {points(g.cost)}
                    {g.remaining !== undefined && `, ${g.remaining} left`}
                    {g.perCustomer && `, ${limit(g.perCustomer)}`}
                  </span>
                </li>
              ) : (
                <li key={g.code} class="muted">
                  {g.name}: {whyNot(g)}
                </li>
              ),
            )}
          </ul>
          <button
            type="button"
            class="secondary"
            ref={affordable < 0 ? firstChoice : null}
            onClick={() => setChoosing(false)}
          >
            Cancel
          </button>
        </fieldset>
      )}
      {e.giftId && e.giftStatus === GiftStatus.ISSUED && done !== "used" && (
        <button
          type="button"
          aria-describedby={titleId}
          onClick={() =>
            void act("use", async () => {
              await gift.use(customerId, e.giftId);
              setDone("used");
              return `${giftName(e.giftCode)} used.`;
            })
          }
        >
          Use
        </button>
      )}
      {problem && (
        <p role="alert" class="problem">
          {problem}
        </p>
      )}
    </li>
  );
}
