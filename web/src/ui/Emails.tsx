// The e-mails sent to the customer (notifications).

import { clock } from "../api/errors";
import type { Email } from "../api/notification";

export function Emails({ emails }: { emails: Email[] | null }) {
  return (
    <section aria-labelledby="emails-h">
      <h2 id="emails-h">E-mails sent to you</h2>
      {!emails && <p>Loading…</p>}
      {emails && emails.length === 0 && <p>None yet: we write when you get or use a gift.</p>}
      {emails && emails.length > 0 && (
        <ul class="emails">
          {emails.map((m) => (
            <li key={m.id}>
              <strong>{m.subject}</strong>
              <span class="muted">
                {" "}
                to {m.recipient}
                {m.sentAt && `, ${m.sentAt.toLocaleDateString()} ${clock(m.sentAt)}`}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
