// MissionService: the catalog and achieving a mission.

import { createClient } from "@connectrpc/connect";
import { MissionService } from "../gen/game/mission/v1/mission_pb";
import { transport } from "./transport";

const client = createClient(MissionService, transport);

export interface CatalogMission {
  code: string;
  title: string;
  points: bigint;
  /** Whether a player may report it for themselves (a button "Achieve <title>"). */
  playerMayReport: boolean;
}

export async function catalog(): Promise<CatalogMission[]> {
  const res = await client.listCatalog({});
  // Every mission may be reported by its player until the catalog says who reports it
  // (issue 11: `reported_by`); then this is the one line to change.
  return res.missions.map((m) => ({ code: m.missionCode, title: m.title, points: m.rewardPoints, playerMayReport: true }));
}

export async function achieve(customerId: string, missionCode: string): Promise<void> {
  // A fresh idempotency key per press: a retry of this request cannot count twice.
  await client.achieveMission({ customerId, missionCode, requestId: crypto.randomUUID() });
}
