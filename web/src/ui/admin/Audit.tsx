// Audit: who did what to whom and when (AuthService/ListAuditEntries, newest first),
// filtered by subject.

import { useEffect, useRef, useState } from "preact/hooks";
import * as admin from "../../api/admin";
import { go } from "./Console";
import { attempt, stamp } from "./load";
import type { Outcome } from "./load";

export function Audit({ subject, onSignedOut }: { subject: string; onSignedOut: (why: string) => void }) {
  const [filter, setFilter] = useState(subject);
  const [entries, setEntries] = useState<Outcome<admin.AuditLine[]> | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    document.title = "Audit · Console · Game Rewards";
    heading.current?.focus();
    void attempt(() => admin.audit(subject), onSignedOut).then(setEntries);
  }, [subject]);

  return (
    <>
      <h1 ref={heading} tabIndex={-1}>
        Audit
      </h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const s = filter.trim();
          go(s ? `/admin/audit?subject=${encodeURIComponent(s)}` : "/admin/audit");
        }}
      >
        <label for="audit-subject">Subject (a customer id; empty for everyone)</label>
        <input id="audit-subject" autocapitalize="none" spellcheck={false} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        <div class="actions">
          <button type="submit">Filter</button>
        </div>
      </form>
      <section aria-labelledby="audit-list">
        <h2 id="audit-list">{subject ? `Entries about ${subject}, newest first` : "Entries, newest first"}</h2>
        {!entries ? (
          <p class="muted">Loading…</p>
        ) : !entries.ok ? (
          <p class="problem">{entries.problem}</p>
        ) : entries.value.length === 0 ? (
          <p class="muted">No entries.</p>
        ) : (
          <ul class="rows">
            {entries.value.map((e, i) => (
              <li key={i}>
                {stamp(e.at)} · <strong>{e.actor}</strong> {e.action.replace(/_/g, " ")} <strong>{e.subject}</strong>
                {e.detail ? ` · ${e.detail}` : ""}
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
