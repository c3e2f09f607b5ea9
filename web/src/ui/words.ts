// The economy in words: a mission's rule, where the customer stands with it, and the
// refusals of missions and gifts — with titles and names instead of codes, and times in
// the reader's own time zone. Reasons are those of the servers' ErrorInfo; an unknown
// one says nothing here, and the server's own message is shown instead.

import { when } from "../api/errors";
import type { Refusal } from "../api/errors";
import type { CatalogGift } from "../api/gift";
import type { Availability, CatalogMission } from "../api/mission";

const PERIOD: Record<string, { per: string; now: string }> = {
  daily: { per: " a day", now: " today" },
  weekly: { per: " a week", now: " this week" },
};

/** "1 point", "20 points". */
export function points(n: bigint): string {
  return n === 1n ? "1 point" : `${String(n)} points`;
}

function times(n: number): string {
  return n === 1 ? "once" : n === 2 ? "twice" : `${n} times`;
}

/** How often a mission counts, its window and what comes first: "Once a day". */
export function rule(m: CatalogMission, title: (code: string) => string): string {
  const parts: string[] = [];
  const period = PERIOD[m.repeat];
  if (m.repeat === "unlimited") parts.push("Any number of times");
  else if (period) parts.push(`${m.maxPerPeriod > 1 ? `Up to ${times(m.maxPerPeriod)}` : "Once"}${period.per}`);
  else parts.push("Once");
  if (m.availableFrom) parts.push(`from ${when(m.availableFrom)}`);
  if (m.availableUntil) parts.push(`until ${when(m.availableUntil)}`);
  if (m.requires.length > 0) parts.push(`after ${m.requires.map((c) => `“${title(c)}”`).join(" and ")}`);
  return parts.join(", ");
}

/** Where the customer stands with a mission, in a line: "Done today · next from Fri 27 Nov, 00:00". */
export function standing(m: CatalogMission, a: Availability | undefined, title: (code: string) => string): string {
  if (!a) return "";
  const period = PERIOD[m.repeat];
  if (a.available) {
    const left = a.remaining !== undefined && m.maxPerPeriod > 1 && period ? ` · ${a.remaining} left${period.now}` : "";
    // The game reports it (a win, a boss): not something the player does from here.
    return `${m.playerMayReport ? "Available now" : "Reported by the game"}${left}`;
  }
  const state: Record<string, string> = {
    MISSION_PERIOD_LIMIT_REACHED: `Done${period?.now ?? ""}`,
    MISSION_ALREADY_ACHIEVED: "Done: it counts once",
    MISSION_NOT_YET_AVAILABLE: "Not available yet",
    MISSION_NO_LONGER_AVAILABLE: "The event is over",
    MISSION_PREREQUISITE_MISSING: `Achieve ${m.requires.map((c) => `“${title(c)}”`).join(" and ")} first`,
  };
  const said = state[a.reason] ?? a.message;
  return a.nextAt ? `${said} · next from ${when(a.nextAt)}` : said;
}

/** A refused achievement in a sentence (the next time is added by `explain`). */
export function missionRefusal(r: Refusal, missions: CatalogMission[], title: (code: string) => string): string | undefined {
  const code = r.metadata["mission_code"] ?? "";
  const m = missions.find((x) => x.code === code);
  const t = `“${title(code)}”`;
  const period = m ? PERIOD[m.repeat] : undefined;
  switch (r.reason) {
    case "MISSION_PERIOD_LIMIT_REACHED": {
      const many = m && m.maxPerPeriod > 1 ? ` ${times(m.maxPerPeriod)}` : "";
      return `${t} was already achieved${many}${period?.now ?? " in this period"}.`;
    }
    case "MISSION_ALREADY_ACHIEVED":
      return `${t} was already achieved; it counts once.`;
    case "MISSION_NOT_YET_AVAILABLE":
      return `${t} is not available yet.`;
    case "MISSION_NO_LONGER_AVAILABLE":
      return `${t} is no longer available: the event is over.`;
    case "MISSION_PREREQUISITE_MISSING":
      return m && m.requires.length > 0 ? `Achieve ${m.requires.map((c) => `“${title(c)}”`).join(" and ")} first.` : undefined;
    default:
      return undefined;
  }
}

/** How many of a gift one customer may have: "one per customer a day". */
export function limit(l: { count: number; period: string }): string {
  return `${l.count === 1 ? "one" : l.count} per customer${PERIOD[l.period]?.per ?? ""}`;
}

/** A refused exchange in a sentence (the next time is added by `explain`). */
export function giftRefusal(r: Refusal, gifts: CatalogGift[]): string | undefined {
  const code = r.metadata["gift_code"] ?? "";
  const g = gifts.find((x) => x.code === code);
  const name = g?.name ?? code;
  switch (r.reason) {
    case "GIFT_OUT_OF_STOCK":
      return `${name} is out of stock: none are left.`;
    case "GIFT_LIMIT_REACHED": {
      if (!g?.perCustomer) return `You already have as many of ${name} as one customer may.`;
      const now = PERIOD[g.perCustomer.period]?.now ?? "";
      const have = g.perCustomer.count === 1 ? "one" : String(g.perCustomer.count);
      return `${name}: ${limit(g.perCustomer)}, and you already have ${have}${now}.`;
    }
    case "GIFT_NOT_ENOUGH_POINTS": {
      const cost = r.metadata["cost_points"];
      const worth = r.metadata["reward_points"];
      return cost && worth ? `${name} costs ${cost} points; this reward is worth ${worth}.` : `This reward is not worth enough for ${name}.`;
    }
    case "GIFT_NOT_YET_AVAILABLE":
      return `${name} is not available yet.`;
    case "GIFT_NO_LONGER_AVAILABLE":
      return `${name} is no longer available.`;
    default:
      return undefined;
  }
}
