// Players: look a customer up by id, then their page (missions, wallet and ledger,
// gifts, e-mails) and the actions support takes (revoke tokens, the admin role, refund
// a gift, adjust points; the wallet's corrections need a reason).

import { useEffect, useRef, useState } from "preact/hooks";
import * as admin from "../../api/admin";
import { words } from "../../api/admin";
import * as mypage from "../../api/mypage";
import { GiftStatus, MissionStatus, RewardStatus } from "../../api/mypage";
import * as notification from "../../api/notification";
import { clock } from "../../api/errors";
import { go } from "./Console";
import { attempt, signed, stamp } from "./load";
import type { Outcome } from "./load";

export function Players() {
  const [id, setId] = useState("");
  const [problem, setProblem] = useState("");
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = "Players · Console · Game Rewards";
    heading.current?.focus();
  }, []);
  return (
    <>
      <h1 ref={heading} tabIndex={-1}>
        Players
      </h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const who = id.trim();
          if (!who) return setProblem("Please enter a customer id.");
          go(`/admin/players/${encodeURIComponent(who)}`);
        }}
      >
        <label for="lookup">Customer id</label>
        <input id="lookup" autocapitalize="none" spellcheck={false} value={id} onInput={(e) => setId(e.currentTarget.value)} />
        <div class="actions">
          <button type="submit">Look up</button>
        </div>
        <p role="alert" class="problem">
          {problem}
        </p>
      </form>
    </>
  );
}

interface Facts {
  missions: Outcome<mypage.Entry[]>;
  wallet: Outcome<admin.Wallet>;
  ledger: Outcome<admin.LedgerLine[]>;
  gifts: Outcome<admin.GiftLine[]>;
  emails: Outcome<notification.Email[]>;
}

function Shown<T>({ o, empty, children }: { o: Outcome<T> | undefined; empty: (v: T) => boolean; children: (v: T) => preact.ComponentChildren }) {
  if (!o) return <p class="muted">Loading…</p>;
  if (!o.ok) return <p class="problem">{o.problem}</p>;
  if (empty(o.value)) return <p class="muted">None.</p>;
  return <>{children(o.value)}</>;
}

export function Player({ customerId, onSignedOut }: { customerId: string; onSignedOut: (why: string) => void }) {
  const [facts, setFacts] = useState<Partial<Facts>>({});
  const [said, setSaid] = useState("");
  const [problem, setProblem] = useState("");
  const [busy, setBusy] = useState(false);
  const [amount, setAmount] = useState("");
  const [adjustReason, setAdjustReason] = useState("");
  const [giftId, setGiftId] = useState("");
  const [refundReason, setRefundReason] = useState("");
  const heading = useRef<HTMLHeadingElement>(null);

  async function load() {
    const [missions, wallet, ledger, gifts, emails] = await Promise.all([
      attempt(() => mypage.older(customerId, "").then((p) => p.entries), onSignedOut),
      attempt(() => admin.getWallet(customerId), onSignedOut),
      attempt(() => admin.ledger(customerId), onSignedOut),
      attempt(() => admin.listGifts(customerId), onSignedOut),
      attempt(() => notification.emails(customerId), onSignedOut),
    ]);
    setFacts({ missions, wallet, ledger, gifts, emails });
  }

  useEffect(() => {
    document.title = `${customerId} · Players · Console · Game Rewards`;
    heading.current?.focus();
    void load();
  }, [customerId]);

  /** Runs an action, says what it did (or why not), then reads the player again. */
  async function act(f: () => Promise<string>): Promise<boolean> {
    if (busy) return false;
    setBusy(true);
    setSaid("");
    setProblem("");
    const o = await attempt(f, onSignedOut);
    if (o.ok) setSaid(o.value);
    else setProblem(o.problem);
    setBusy(false);
    await load();
    return o.ok;
  }

  const refundable = facts.gifts?.ok ? facts.gifts.value.filter((g) => g.refundable) : [];

  return (
    <>
      <p>
        <a
          href="/admin"
          onClick={(e) => {
            e.preventDefault();
            go("/admin");
          }}
        >
          Find another player
        </a>
      </p>
      <h1 ref={heading} tabIndex={-1}>
        Player {customerId}
      </h1>
      <p role="status" class="notice">
        {said}
      </p>
      <p role="alert" class="problem">
        {problem}
      </p>

      <section aria-labelledby="p-actions">
        <h2 id="p-actions">Actions</h2>
        <div class="actions">
          <button
            type="button"
            aria-disabled={busy}
            onClick={() =>
              void act(async () => {
                const before = await admin.revokeTokens(customerId);
                return `${customerId}'s tokens are revoked: every token issued before ${before ? clock(before) : "now"} is refused.`;
              })
            }
          >
            Revoke tokens
          </button>
          <button
            type="button"
            class="secondary"
            aria-disabled={busy}
            onClick={() =>
              void act(async () => ((await admin.setAdmin(customerId, true)) ? `${customerId} is now an administrator.` : `${customerId} was already an administrator.`))
            }
          >
            Grant admin role
          </button>
          <button
            type="button"
            class="secondary"
            aria-disabled={busy}
            onClick={() =>
              void act(async () => ((await admin.setAdmin(customerId, false)) ? `${customerId} is no longer an administrator.` : `${customerId} was not an administrator.`))
            }
          >
            Revoke admin role
          </button>
        </div>

        <form
          class="choose"
          onSubmit={(e) => {
            e.preventDefault();
            const n = amount.trim();
            if (!/^-?\d+$/.test(n) || BigInt(n) === 0n) return setProblem("Amount: please enter a whole number of points, not zero (negative to take points away).");
            if (!adjustReason.trim()) return setProblem("Reason for the adjustment: please say why.");
            void act(async () => `Adjusted by ${signed(BigInt(n))} points; the balance is now ${await admin.adjustPoints(customerId, BigInt(n), adjustReason.trim())}.`).then(
              (ok) => ok && (setAmount(""), setAdjustReason("")),
            );
          }}
        >
          <fieldset>
            <legend>Adjust points</legend>
            <label for="adjust-amount">Amount (negative takes points away)</label>
            <input id="adjust-amount" inputMode="numeric" value={amount} onInput={(e) => setAmount(e.currentTarget.value)} />
            <label for="adjust-reason">Reason for the adjustment</label>
            <input id="adjust-reason" value={adjustReason} onInput={(e) => setAdjustReason(e.currentTarget.value)} />
            <div class="actions">
              <button type="submit" aria-disabled={busy}>
                Adjust points
              </button>
            </div>
          </fieldset>
        </form>

        <form
          class="choose"
          onSubmit={(e) => {
            e.preventDefault();
            const gift = refundable.find((g) => g.id === giftId) ?? refundable[0];
            if (!gift) return setProblem("There is no gift to refund: only issued, unused gifts can be refunded.");
            if (!refundReason.trim()) return setProblem("Reason for the refund: please say why.");
            void act(async () => `${gift.name} refunded: ${await admin.refundGift(gift.id, refundReason.trim())} points back.`).then(
              (ok) => ok && setRefundReason(""),
            );
          }}
        >
          <fieldset>
            <legend>Refund a gift</legend>
            <label for="refund-gift">Gift</label>
            <select id="refund-gift" value={giftId} onChange={(e) => setGiftId(e.currentTarget.value)}>
              {refundable.length === 0 && <option value="">No issued gift to refund</option>}
              {refundable.map((g) => (
                <option key={g.id} value={g.id}>
                  {g.name} ({g.id.slice(0, 8)}…)
                </option>
              ))}
            </select>
            <label for="refund-reason">Reason for the refund</label>
            <input id="refund-reason" value={refundReason} onInput={(e) => setRefundReason(e.currentTarget.value)} />
            <div class="actions">
              <button type="submit" aria-disabled={busy}>
                Refund gift
              </button>
            </div>
          </fieldset>
        </form>
      </section>

      <section aria-labelledby="p-wallet">
        <h2 id="p-wallet">Wallet</h2>
        <Shown o={facts.wallet} empty={() => false}>
          {(w) => (
            <>
              <dl class="totals">
                <div>
                  <dt>Balance</dt>
                  <dd>{String(w.balance)}</dd>
                </div>
                <div>
                  <dt>Available in rewards</dt>
                  <dd>{String(w.available)}</dd>
                </div>
              </dl>
              <h3 class="sub">Rewards</h3>
              {w.items.length === 0 ? (
                <p class="muted">None.</p>
              ) : (
                <ul class="rows">
                  {w.items.map((i) => (
                    <li key={i.rewardId}>
                      Reward {i.rewardId.slice(0, 8)}… · {String(i.points)} points ({String(i.remaining)} left) · {i.status}
                      {i.giftId ? ` · gift ${i.giftId.slice(0, 8)}…` : ""}
                    </li>
                  ))}
                </ul>
              )}
            </>
          )}
        </Shown>
      </section>

      <section aria-labelledby="p-ledger">
        <h2 id="p-ledger">Ledger, newest first</h2>
        <Shown o={facts.ledger} empty={(l) => l.length === 0}>
          {(l) => (
            <ul class="rows">
              {l.map((e) => (
                <li key={e.id}>
                  {stamp(e.at)} · {e.kind} {signed(e.amount)} → {String(e.balanceAfter)}
                  {e.actor ? ` · by ${e.actor}` : ""}
                  {e.reason ? ` · “${e.reason}”` : ""}
                </li>
              ))}
            </ul>
          )}
        </Shown>
      </section>

      <section aria-labelledby="p-missions">
        <h2 id="p-missions">Missions, newest first</h2>
        <Shown o={facts.missions} empty={(m) => m.length === 0}>
          {(m) => (
            <ul class="rows">
              {m.map((e) => (
                <li key={e.missionId}>
                  {e.missionCode} · {words(MissionStatus, e.missionStatus)} · reward {words(RewardStatus, e.rewardStatus)} ({String(e.points)} points)
                  {e.giftCode ? ` · ${e.giftCode} ${words(GiftStatus, e.giftStatus)}` : ""}
                </li>
              ))}
            </ul>
          )}
        </Shown>
      </section>

      <section aria-labelledby="p-gifts">
        <h2 id="p-gifts">Gifts</h2>
        <Shown o={facts.gifts} empty={(g) => g.length === 0}>
          {(g) => (
            <ul class="rows">
              {g.map((x) => (
                <li key={x.id}>
                  {x.name} · {x.status} · issued {stamp(x.issuedAt)}
                </li>
              ))}
            </ul>
          )}
        </Shown>
      </section>

      <section aria-labelledby="p-emails">
        <h2 id="p-emails">Notifications</h2>
        <Shown o={facts.emails} empty={(e) => e.length === 0}>
          {(e) => (
            <ul class="rows">
              {e.map((x) => (
                <li key={x.id}>
                  {stamp(x.sentAt)} · {x.subject} · to {x.recipient}
                </li>
              ))}
            </ul>
          )}
        </Shown>
      </section>
    </>
  );
}
