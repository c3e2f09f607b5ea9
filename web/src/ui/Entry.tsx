// One achieved mission and what became of it: its reward (with "Exchange" while ISSUED,
// then the choice of gift) and its gift (with "Use" while not used).

import { useEffect, useRef, useState } from "preact/hooks";
import { explain } from "../api/errors";
import type { Doing } from "../api/errors";
import * as gift from "../api/gift";
import type { CatalogGift } from "../api/gift";
import { GiftStatus, MissionStatus, RewardStatus } from "../api/mypage";
import type { Entry } from "../api/mypage";
import * as wallet from "../api/wallet";

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
  customerId: string;
  onNotice: (text: string) => void;
  onSignedOut: (why: string) => void;
}

export function EntryItem({ entry: e, title, gifts, customerId, onNotice, onSignedOut }: Props) {
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
      const p = explain(err, doing);
      if (p.signedOut) return onSignedOut(p.text);
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
  const affordable = gifts.findIndex((g) => g.cost <= e.points);
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
            {e.rewardId || e.points > 0n ? `${String(e.points)} points, ` : ""}
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
        <button type="button" ref={exchangeButton} aria-describedby={titleId} onClick={() => setChoosing(true)}>
          Exchange
        </button>
      )}
      {issued && choosing && (
        <fieldset class="choose">
          <legend>Choose a gift for {String(e.points)} points</legend>
          <ul>
            {gifts.map((g, i) =>
              g.cost <= e.points ? (
                <li key={g.code}>
                  <button type="button" ref={i === affordable ? firstChoice : null} onClick={() => void exchange(g)}>
                    {g.name}
                  </button>{" "}
                  <span class="muted">{String(g.cost)} points</span>
                </li>
              ) : (
                <li key={g.code} class="muted">
                  {g.name}: {String(g.cost)} points, more than this reward’s {String(e.points)}
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
