// Dead letters: the events a consumer gave up on (DeadLetterService), the decoded event,
// redrive one or all, discard one with a reason.

import { useEffect, useRef, useState } from "preact/hooks";
import * as admin from "../../api/admin";
import type { DeadLetter } from "../../api/admin";
import { attempt } from "./load";
import type { Outcome } from "./load";

export function DeadLetters({ onSignedOut }: { onSignedOut: (why: string) => void }) {
  const [consumer, setConsumer] = useState("");
  const [shownFor, setShownFor] = useState("");
  const [list, setList] = useState<Outcome<DeadLetter[]> | null>(null);
  const [events, setEvents] = useState<Record<string, string>>({});
  const [discarding, setDiscarding] = useState<bigint | null>(null);
  const [reason, setReason] = useState("");
  const [said, setSaid] = useState("");
  const [problem, setProblem] = useState("");
  const heading = useRef<HTMLHeadingElement>(null);

  const load = (c: string) =>
    attempt(() => admin.listDeadLetters(c), onSignedOut).then((o) => {
      setList(o);
      setShownFor(c);
    });

  useEffect(() => {
    document.title = "Dead letters · Console · Game Rewards";
    heading.current?.focus();
    void load("");
  }, []);

  async function act(f: () => Promise<string>) {
    setSaid("");
    setProblem("");
    const o = await attempt(f, onSignedOut);
    if (o.ok) setSaid(o.value);
    else setProblem(o.problem);
    await load(shownFor);
  }

  const redriven = (r: { redriven: bigint[]; refused: { id: bigint; reason: string }[] }) =>
    [
      r.redriven.length ? `Sent back: ${r.redriven.join(", ")}.` : "Nothing was sent back.",
      ...r.refused.map((x) => `Dead letter ${x.id} stays: ${x.reason}`),
    ].join(" ");

  const waiting = list?.ok ? list.value : [];

  return (
    <>
      <h1 ref={heading} tabIndex={-1}>
        Dead letters
      </h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void load(consumer.trim());
        }}
      >
        <label for="dl-consumer">Consumer (empty for all)</label>
        <input id="dl-consumer" autocapitalize="none" spellcheck={false} value={consumer} onInput={(e) => setConsumer(e.currentTarget.value)} />
        <div class="actions">
          <button type="submit">List</button>
          <button
            type="button"
            class="secondary"
            disabled={waiting.length === 0}
            onClick={() => void act(async () => redriven(await admin.redrive({ all: true, consumer: shownFor })))}
          >
            Redrive all
          </button>
        </div>
      </form>
      <p role="status" class="notice">
        {said}
      </p>
      <p role="alert" class="problem">
        {problem}
      </p>
      <section aria-labelledby="dl-list">
        <h2 id="dl-list">{shownFor ? `Waiting for ${shownFor}, oldest first` : "Waiting, oldest first"}</h2>
        {!list ? (
          <p class="muted">Loading…</p>
        ) : !list.ok ? (
          <p class="problem">{list.problem}</p>
        ) : waiting.length === 0 ? (
          <p class="muted">No dead letters are waiting.</p>
        ) : (
          <ul class="cards">
            {waiting.map((d) => {
              const id = String(d.id);
              return (
                <li class="card" key={id}>
                  <h3 id={`dl-${id}`}>
                    Dead letter {id}: {d.eventType || d.subject}
                  </h3>
                  <dl class="facts">
                    <div>
                      <dt>Consumer</dt>
                      <dd>{d.consumer}</dd>
                    </div>
                    <div>
                      <dt>Customer</dt>
                      <dd>{d.customerId || "—"}</dd>
                    </div>
                    <div>
                      <dt>Why</dt>
                      <dd>{d.reason}</dd>
                    </div>
                    <div>
                      <dt>Attempts</dt>
                      <dd>{String(d.attempts)}</dd>
                    </div>
                    <div>
                      <dt>Since</dt>
                      <dd>{d.deadLetteredAt}</dd>
                    </div>
                  </dl>
                  {events[id] !== undefined && <pre class="event">{events[id]}</pre>}
                  <div class="actions">
                    <button
                      type="button"
                      class="secondary"
                      aria-describedby={`dl-${id}`}
                      onClick={() =>
                        void attempt(() => admin.deadLetterEvent(d.id), onSignedOut).then((o) =>
                          o.ok ? setEvents({ ...events, [id]: o.value }) : setProblem(o.problem),
                        )
                      }
                    >
                      Show event
                    </button>
                    <button type="button" aria-describedby={`dl-${id}`} onClick={() => void act(async () => redriven(await admin.redrive({ id: d.id })))}>
                      Redrive
                    </button>
                    <button type="button" class="secondary" aria-describedby={`dl-${id}`} onClick={() => setDiscarding(d.id)}>
                      Discard…
                    </button>
                  </div>
                  {discarding === d.id && (
                    <form
                      onSubmit={(e) => {
                        e.preventDefault();
                        if (!reason.trim()) return setProblem("Reason for discarding: please say why.");
                        void act(async () =>
                          (await admin.discard(d.id, reason.trim())) ? `Dead letter ${id} discarded.` : `Dead letter ${id} was no longer waiting.`,
                        ).then(() => {
                          setDiscarding(null);
                          setReason("");
                        });
                      }}
                    >
                      <label for={`dl-reason-${id}`}>Reason for discarding dead letter {id}</label>
                      <input id={`dl-reason-${id}`} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
                      <div class="actions">
                        <button type="submit">Discard dead letter {id}</button>
                      </div>
                    </form>
                  )}
                </li>
              );
            })}
          </ul>
        )}
      </section>
    </>
  );
}
