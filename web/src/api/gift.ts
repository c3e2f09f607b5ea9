// GiftService: what a reward can become, and using a gift.

import { createClient } from "@connectrpc/connect";
import { GiftService } from "../gen/game/gift/v1/gift_pb";
import { transport } from "./transport";

const client = createClient(GiftService, transport);

export interface CatalogGift {
  code: string;
  name: string;
  cost: bigint;
}

export async function catalog(): Promise<CatalogGift[]> {
  const res = await client.listCatalog({});
  return res.gifts.map((g) => ({ code: g.giftCode, name: g.name, cost: g.costPoints }));
}

export async function use(customerId: string, giftId: string): Promise<void> {
  await client.useGift({ customerId, giftId });
}
