// The operator's console: every call it makes, each an existing RPC that the services
// allow an admin (and refuse anyone else: the page is never the guard).

import { createClient } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { DeadLetterService } from "../gen/game/admin/v1/dead_letter_pb";
import type { DeadLetter } from "../gen/game/admin/v1/dead_letter_pb";
import { AuthService } from "../gen/game/auth/v1/auth_pb";
import { GiftService, GiftStatus } from "../gen/game/gift/v1/gift_pb";
import { LedgerEntryKind, WalletItemStatus, WalletService } from "../gen/game/wallet/v1/wallet_pb";
import { transport } from "./transport";

export type { DeadLetter };

const auth = createClient(AuthService, transport);
const wallet = createClient(WalletService, transport);
const gifts = createClient(GiftService, transport);
const deadLetters = createClient(DeadLetterService, transport);

const date = (t: Timestamp | undefined) => (t ? timestampDate(t) : null);
/** An enum value's name in words: GiftStatus.USED -> "used". */
export function words(e: Record<number, string>, v: number): string {
  return (e[v] ?? "unspecified").toLowerCase().replace(/_/g, " ");
}

export interface Wallet {
  balance: bigint;
  available: bigint;
  items: { rewardId: string; missionId: string; points: bigint; remaining: bigint; status: string; giftId: string }[];
}

export async function getWallet(customerId: string): Promise<Wallet> {
  const res = await wallet.getWallet({ customerId, pageSize: 100 });
  const w = res.wallet;
  return {
    balance: w?.balance ?? 0n,
    available: w?.availablePoints ?? 0n,
    items: (w?.items ?? []).map((i) => ({
      rewardId: i.rewardId,
      missionId: i.missionId,
      points: i.points,
      remaining: i.remainingPoints,
      status: words(WalletItemStatus, i.status),
      giftId: i.giftId,
    })),
  };
}

export interface LedgerLine {
  id: string;
  kind: string;
  amount: bigint;
  balanceAfter: bigint;
  reference: string;
  actor: string;
  reason: string;
  at: Date | null;
}

export async function ledger(customerId: string): Promise<LedgerLine[]> {
  const res = await wallet.listLedgerEntries({ customerId, pageSize: 100 });
  return res.entries.map((e) => ({
    id: e.entryId,
    kind: words(LedgerEntryKind, e.kind),
    amount: e.amount,
    balanceAfter: e.balanceAfter,
    reference: e.reference,
    actor: e.actor,
    reason: e.reason,
    at: date(e.createTime),
  }));
}

export interface GiftLine {
  id: string;
  name: string;
  status: string;
  refundable: boolean;
  issuedAt: Date | null;
}

export async function listGifts(customerId: string): Promise<GiftLine[]> {
  const res = await gifts.listGifts({ customerId, pageSize: 100 });
  return res.gifts.map((g) => ({
    id: g.giftId,
    name: g.name || g.giftCode,
    status: words(GiftStatus, g.status),
    refundable: g.status === GiftStatus.ISSUED,
    issuedAt: date(g.issuedAt),
  }));
}

export async function refundGift(giftId: string, reason: string): Promise<bigint> {
  const res = await wallet.refundGift({ giftId, reason, requestId: crypto.randomUUID() });
  return res.points;
}

export async function adjustPoints(customerId: string, amount: bigint, reason: string): Promise<bigint> {
  const res = await wallet.adjustPoints({ customerId, amount, reason, requestId: crypto.randomUUID() });
  return res.balance;
}

export async function revokeTokens(customerId: string): Promise<Date | null> {
  const res = await auth.revokeTokens({ customerId });
  return date(res.revokedBefore);
}

/** Whether anything changed. */
export async function setAdmin(customerId: string, admin: boolean): Promise<boolean> {
  const res = admin ? await auth.grantRole({ customerId, role: "admin" }) : await auth.revokeRole({ customerId, role: "admin" });
  return res.changed;
}

export interface AuditLine {
  at: Date | null;
  actor: string;
  action: string;
  subject: string;
  detail: string;
}

export async function audit(subject: string): Promise<AuditLine[]> {
  const res = await auth.listAuditEntries({ subject, limit: 100 });
  return res.entries.map((e) => ({ at: date(e.at), actor: e.actor, action: e.action, subject: e.subject, detail: e.detail }));
}

export async function listDeadLetters(consumer: string): Promise<DeadLetter[]> {
  const res = await deadLetters.listDeadLetters({ consumer, pageSize: 100 });
  return res.deadLetters;
}

/** The decoded event, as the server writes it. */
export async function deadLetterEvent(id: bigint): Promise<string> {
  const res = await deadLetters.getDeadLetter({ id });
  return res.event;
}

export async function redrive(which: { id: bigint } | { all: true; consumer: string }) {
  const res = await deadLetters.redriveDeadLetters("id" in which ? { id: which.id } : { all: true, consumer: which.consumer });
  return { redriven: res.redriven, refused: res.refused.map((r) => ({ id: r.id, reason: r.reason })) };
}

export async function discard(id: bigint, reason: string): Promise<boolean> {
  const res = await deadLetters.discardDeadLetter({ id, reason });
  return res.discarded;
}
