// The missions to achieve: each one's reward and rule, where the customer stands with it
// now and when next (GetAvailability), and "Achieve <title>" only for a mission the
// player reports themselves and may achieve now; the game reports the others.

import type { Availability, Catalog, CatalogMission } from "../api/mission";
import { points, rule, standing } from "./words";

interface Props {
  catalog: Catalog | null;
  /** Per mission code; null until the first answer (every player mission is pressable). */
  availability: Map<string, Availability> | null;
  /** The code being achieved, while the call is in flight. */
  achieving: string;
  problem: { code: string; text: string };
  onAchieve: (m: CatalogMission) => void;
}

/** "Days start at 04:00 (Asia/Seoul); weeks on Monday." */
function resets(c: Catalog): string {
  const at = c.resetAt.slice(0, 5) || "00:00";
  return `Days start at ${at} (${c.timeZone || "UTC"}); weeks on Monday.`;
}

export function Missions({ catalog, availability, achieving, problem, onAchieve }: Props) {
  if (!catalog) return <p>Loading…</p>;
  const title = (code: string) => catalog.missions.find((m) => m.code === code)?.title ?? code;
  return (
    <>
      <p class="muted">{resets(catalog)}</p>
      <ul class="cards">
        {catalog.missions.map((m) => {
          const a = availability?.get(m.code);
          // What the server said cannot be done now gets no button; should the page be
          // behind (done elsewhere a moment ago), the refusal is explained.
          const pressable = m.playerMayReport && (a === undefined || a.available);
          return (
            <li key={m.code} class="card">
              <h3>{m.title}</h3>
              <p>Reward: {points(m.points)}</p>
              <p class="muted">{rule(m, title)}</p>
              {!m.playerMayReport && <p class="muted">Reported by the game when it happens.</p>}
              {a && <p class={a.available ? "ok" : "muted"}>{standing(m, a, title)}</p>}
              {pressable && (
                <button type="button" aria-disabled={achieving === m.code} onClick={() => onAchieve(m)}>
                  Achieve {m.title}
                </button>
              )}
              {problem.code === m.code && (
                <p role="alert" class="problem">
                  {problem.text}
                </p>
              )}
            </li>
          );
        })}
      </ul>
    </>
  );
}
