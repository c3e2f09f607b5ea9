// GiftService: what a reward can become (costs, what is left, limits), and using a gift.

import { createClient } from "@connectrpc/connect";
import { GiftService } from "../gen/game/gift/v1/gift_pb";
import { transport } from "./transport";

const client = createClient(GiftService, transport);

export interface CatalogGift {
  code: string;
  name: string;
  cost: bigint;
  /** How many are left of a limited stock; absent when there is no limit. */
  remaining?: number;
  /** How many one customer may have, per "daily", "weekly" or "ever". */
  perCustomer?: { count: number; period: string };
}

export async function catalog(): Promise<CatalogGift[]> {
  const res = await client.listCatalog({});
  return res.gifts.map((g) => ({
    code: g.giftCode,
    name: g.name,
    cost: g.costPoints,
    ...(g.remaining !== undefined ? { remaining: g.remaining } : {}),
    ...(g.perCustomerLimit ? { perCustomer: { count: g.perCustomerLimit.count, period: g.perCustomerLimit.period } } : {}),
  }));
}

export async function use(customerId: string, giftId: string): Promise<void> {
  await client.useGift({ customerId, giftId });
}
