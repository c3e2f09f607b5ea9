// MyPageService: the page, and its changes as they happen.

import { createClient } from "@connectrpc/connect";
import { GiftStatus, MissionStatus, MyPageService, RewardStatus } from "../gen/game/mypage/v1/mypage_pb";
import type { MyPage } from "../gen/game/mypage/v1/mypage_pb";
import { transport } from "./transport";

const client = createClient(MyPageService, transport);

export { GiftStatus, MissionStatus, RewardStatus };

export interface Entry {
  missionId: string;
  missionCode: string;
  missionStatus: MissionStatus;
  rewardId: string;
  rewardStatus: RewardStatus;
  points: bigint;
  giftId: string;
  giftStatus: GiftStatus;
  giftCode: string;
}

export interface Page {
  /** Newest first: the most recent ones (older ones come from `older`). */
  entries: Entry[];
  /** Every entry of the customer, shown or not. */
  entryCount: bigint;
  pointsIssued: bigint;
  pointsExchanged: bigint;
  pointsAvailable: bigint;
  version: bigint;
}

function toPage(p: MyPage | undefined): Page {
  // Entries come in mission order; mission ids are UUIDv7, so that is the order they
  // were achieved in (issue 14 pages them newest first on the server).
  const entries = (p?.entries ?? []).map((e) => ({ ...e })).reverse();
  const issued = p?.pointsIssued ?? 0n;
  const exchanged = p?.pointsExchanged ?? 0n;
  return {
    entries,
    entryCount: p?.entryCount ?? BigInt(entries.length),
    pointsIssued: issued,
    pointsExchanged: exchanged,
    pointsAvailable: issued - exchanged,
    version: p?.version ?? 0n,
  };
}

/** Entries a page of older ones holds. */
export const OLDER_PAGE_SIZE = 50;

export interface Older {
  /** Newest first. */
  entries: Entry[];
  /** Where the next older page starts; empty when there is none. */
  next: string;
}

/**
 * One page of entries, newest first, from `pageToken` (the `next` of the page before;
 * empty: the most recent entries, the ones the watched page holds).
 */
export async function older(customerId: string, pageToken: string): Promise<Older> {
  const res = await client.getMyPage({ customerId, pageSize: OLDER_PAGE_SIZE, pageToken });
  return { entries: toPage(res.page).entries, next: res.nextPageToken };
}

/** The current page, then a new one on every change, until the stream breaks or `signal` aborts. */
export async function* watch(customerId: string, signal: AbortSignal): AsyncGenerator<Page> {
  for await (const res of client.watchMyPage({ customerId }, { signal })) {
    yield toPage(res.page);
  }
}
