//! `gamectl` commands of the points account: the balance, the ledger, redeeming a gift;
//! an admin's refunds and adjustments.

use contracts::pb::wallet;

use super::{Conn, Failure, emit, emit_list, paged, wallet_client};
use crate::{cli, output};

pub(super) async fn balance(conn: &Conn<'_>, customer_id: Option<String>) -> Result<(), Failure> {
    let global = conn.global;
    let customer_id = conn.customer(customer_id)?;
    let r = wallet_client(conn)
        .await?
        .get_wallet(wallet::v1::GetWalletRequest { customer_id: customer_id.clone(), page_size: 1 })
        .await?
        .into_inner();
    let w = r.wallet.unwrap_or_default();
    emit(global, || output::balance_json(&customer_id, &w), || output::balance_text(&customer_id, &w));
    Ok(())
}

pub(super) async fn ledger(
    conn: &Conn<'_>,
    customer_id: Option<String>,
    kind: Option<cli::EntryKind>,
    paging: cli::Paging,
) -> Result<(), Failure> {
    let global = conn.global;
    let customer_id = conn.customer(customer_id)?;
    let c = wallet_client(conn).await?;
    let kind = kind.map_or(wallet::v1::LedgerEntryKind::Unspecified, cli::EntryKind::to_proto) as i32;
    let list = paged(&paging, |page_size, page_token| {
        let (mut c, customer_id) = (c.clone(), customer_id.clone());
        async move {
            let req = wallet::v1::ListLedgerEntriesRequest { customer_id, page_size, page_token, kind };
            let r = c.list_ledger_entries(req).await?.into_inner();
            Ok((r.entries, r.next_page_token))
        }
    })
    .await?;
    emit_list(global, "entries", &list, output::ledger_entry_json, output::ledger_text);
    Ok(())
}

pub(super) async fn redeem(conn: &Conn<'_>, args: Vec<String>, request_id: Option<String>) -> Result<(), Failure> {
    let global = conn.global;
    let (customer_id, rest) = cli::optional_customer(args, 1);
    let customer_id = conn.customer(customer_id)?;
    let [gift_code]: [String; 1] =
        rest.try_into().map_err(|_| Failure::Token("redeem: [CUSTOMER_ID] GIFT_CODE".into()))?;
    let r = wallet_client(conn)
        .await?
        .redeem_gift(wallet::v1::RedeemGiftRequest {
            customer_id,
            gift_code: gift_code.clone(),
            request_id: request_id.unwrap_or_default(),
        })
        .await?
        .into_inner();
    emit(global, || output::redeem_json(&r), || output::redeem_text(&gift_code, &r));
    Ok(())
}

pub(super) async fn refund(
    conn: &Conn<'_>,
    gift_id: String,
    reason: String,
    request_id: Option<String>,
) -> Result<(), Failure> {
    let global = conn.global;
    let r = wallet_client(conn)
        .await?
        .refund_gift(wallet::v1::RefundGiftRequest { gift_id, reason, request_id: request_id.unwrap_or_default() })
        .await?
        .into_inner();
    emit(global, || output::refund_json(&r), || output::refund_text(&r));
    Ok(())
}

pub(super) async fn adjust(
    conn: &Conn<'_>,
    customer_id: String,
    amount: i64,
    reason: String,
    request_id: Option<String>,
) -> Result<(), Failure> {
    let global = conn.global;
    let r = wallet_client(conn)
        .await?
        .adjust_points(wallet::v1::AdjustPointsRequest {
            customer_id,
            amount,
            reason,
            request_id: request_id.unwrap_or_default(),
        })
        .await?
        .into_inner();
    emit(global, || output::adjust_json(&r), || output::adjust_text(&r));
    Ok(())
}
