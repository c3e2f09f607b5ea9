// AuthService: register and log in.

import { createClient } from "@connectrpc/connect";
import { AuthService } from "../gen/game/auth/v1/auth_pb";
import type { Session } from "../session";
import { transport } from "./transport";

const client = createClient(AuthService, transport);

export async function register(customerId: string, password: string): Promise<void> {
  await client.registerCustomer({ customerId, password });
}

export async function logIn(customerId: string, password: string): Promise<Session> {
  const res = await client.issueToken({ customerId, password });
  return { customerId, token: res.accessToken, expiresAt: Date.now() + Number(res.expiresIn) * 1000 };
}
