// MissionService: the catalog with each mission's rule, where a customer stands with each
// (GetAvailability), and achieving a mission.

import { createClient } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { MissionService, Repeat, Reporter } from "../gen/game/mission/v1/mission_pb";
import { transport } from "./transport";

const client = createClient(MissionService, transport);

export type RepeatRule = "once" | "daily" | "weekly" | "unlimited";

export interface CatalogMission {
  code: string;
  title: string;
  points: bigint;
  repeat: RepeatRule;
  /** Achievements per period (daily, weekly); 1 for once; 0 when there is no cap. */
  maxPerPeriod: number;
  /** Whether a player may report it for themselves (a button "Achieve <title>"); the
   *  others are reported by the game server when they happen. */
  playerMayReport: boolean;
  availableFrom?: Date;
  availableUntil?: Date;
  /** Codes of the missions to achieve first. */
  requires: string[];
}

export interface Catalog {
  missions: CatalogMission[];
  /** When days and weeks reset: a local time of day ("00:00:00") in `timeZone`. */
  resetAt: string;
  timeZone: string;
}

/** Where a customer stands with one mission, as the server decided just now. */
export interface Availability {
  code: string;
  available: boolean;
  /** Why not, machine-readable (as in a refusal's ErrorInfo); "" when available. */
  reason: string;
  /** Why not, in the server's words. */
  message: string;
  /** When it can next be achieved; absent when never again. */
  nextAt?: Date;
  /** Achievements left in this period; absent when there is no cap. */
  remaining?: number;
}

const REPEAT: Record<Repeat, RepeatRule> = {
  [Repeat.UNSPECIFIED]: "once",
  [Repeat.ONCE]: "once",
  [Repeat.DAILY]: "daily",
  [Repeat.WEEKLY]: "weekly",
  [Repeat.UNLIMITED]: "unlimited",
};

function date(t: Timestamp | undefined): { at?: Date } {
  return t ? { at: timestampDate(t) } : {};
}

export async function catalog(): Promise<Catalog> {
  const res = await client.listCatalog({});
  const missions = res.missions.map((m): CatalogMission => {
    const from = date(m.availableFrom).at;
    const until = date(m.availableUntil).at;
    return {
      code: m.missionCode,
      title: m.title,
      points: m.rewardPoints,
      repeat: REPEAT[m.repeat] ?? "once",
      maxPerPeriod: m.maxPerPeriod,
      // Only what the catalog says players report: an older server saying nothing
      // (UNSPECIFIED) gets no button rather than a refusal.
      playerMayReport: m.reportedBy === Reporter.PLAYER,
      ...(from ? { availableFrom: from } : {}),
      ...(until ? { availableUntil: until } : {}),
      requires: [...m.requires],
    };
  });
  return { missions, resetAt: res.resetAt, timeZone: res.timeZone };
}

/** Per mission code, where `customerId` stands now. */
export async function availability(customerId: string, signal?: AbortSignal): Promise<Map<string, Availability>> {
  const res = await client.getAvailability({ customerId }, signal ? { signal } : {});
  return new Map(
    res.missions.map((a) => {
      const next = date(a.nextAvailableAt).at;
      const entry: Availability = {
        code: a.missionCode,
        available: a.available,
        reason: a.reason,
        message: a.message,
        ...(next ? { nextAt: next } : {}),
        ...(a.remainingInPeriod !== undefined ? { remaining: a.remainingInPeriod } : {}),
      };
      return [a.missionCode, entry];
    }),
  );
}

export async function achieve(customerId: string, missionCode: string): Promise<void> {
  // A fresh idempotency key per press: a retry of this request cannot count twice.
  await client.achieveMission({ customerId, missionCode, requestId: crypto.randomUUID() });
}
