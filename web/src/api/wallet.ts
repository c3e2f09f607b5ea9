// WalletService: exchanging an ISSUED reward for a gift.

import { createClient } from "@connectrpc/connect";
import { WalletService } from "../gen/game/wallet/v1/wallet_pb";
import { transport } from "./transport";

const client = createClient(WalletService, transport);

/** Returns the id of the gift. */
export async function exchange(customerId: string, rewardId: string, giftCode: string): Promise<string> {
  const res = await client.exchangeReward({ customerId, rewardId, giftCode, requestId: crypto.randomUUID() });
  return res.giftId;
}
