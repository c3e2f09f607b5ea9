//! `gamectl` commands of the reward and wallet services: rewards, the wallet, exchanges.

use contracts::pb::{reward, wallet};
use serde_json::json;

use super::{Conn, Failure, emit, emit_list, paged, wallet_client};
use crate::{cli, output};

pub(super) async fn rewards(conn: &Conn<'_>, customer_id: Option<String>, paging: cli::Paging) -> Result<(), Failure> {
    let global = conn.global;
    let customer_id = conn.customer(customer_id)?;
    let c = reward::v1::reward_service_client::RewardServiceClient::new(conn.connect("reward").await?);
    let list = paged(&paging, |page_size, page_token| {
        let (mut c, customer_id) = (c.clone(), customer_id.clone());
        async move {
            let r = c
                .list_rewards(reward::v1::ListRewardsRequest { customer_id, page_size, page_token })
                .await?
                .into_inner();
            Ok((r.rewards, r.next_page_token))
        }
    })
    .await?;
    emit_list(global, "rewards", &list, output::reward_json, output::rewards_text);
    Ok(())
}

pub(super) async fn reward(conn: &Conn<'_>, reward_id: String) -> Result<(), Failure> {
    let global = conn.global;
    let mut c = reward::v1::reward_service_client::RewardServiceClient::new(conn.connect("reward").await?);
    let r = c.get_reward(reward::v1::GetRewardRequest { reward_id }).await?.into_inner();
    emit(
        global,
        || output::wrap("reward", r.reward.as_ref().map(output::reward_json)),
        || r.reward.as_ref().map_or_else(|| "no reward".into(), output::reward_text),
    );
    Ok(())
}

pub(super) async fn wallet(conn: &Conn<'_>, customer_id: Option<String>, paging: cli::Paging) -> Result<(), Failure> {
    let global = conn.global;
    let customer_id = conn.customer(customer_id)?;
    let mut c = wallet::v1::wallet_service_client::WalletServiceClient::new(conn.connect("wallet").await?);
    let page_size = paging.page_size.unwrap_or(0);
    let first = wallet::v1::GetWalletRequest { customer_id: customer_id.clone(), page_size };
    // The balance and the first page; the items after it from ListWalletItems.
    let r = c.get_wallet(first).await?.into_inner();
    let mut wallet = r.wallet.unwrap_or_default();
    let mut next = r.next_page_token;
    if paging.page_token.is_some() || (paging.all && !next.is_empty()) {
        let from = cli::Paging { page_token: paging.page_token.clone().or(Some(next)), ..paging.clone() };
        let (items, after) = paged(&from, |page_size, page_token| {
            let (mut c, customer_id) = (c.clone(), customer_id.clone());
            async move {
                let req = wallet::v1::ListWalletItemsRequest { customer_id, page_size, page_token };
                let r = c.list_wallet_items(req).await?.into_inner();
                Ok((r.items, r.next_page_token))
            }
        })
        .await?;
        if paging.all {
            wallet.items.extend(items);
        } else {
            wallet.items = items;
        }
        next = after;
    }
    emit(
        global,
        || {
            let mut v = output::wrap("wallet", Some(output::wallet_json(&wallet)));
            v["nextPageToken"] = json!(next);
            v
        },
        || output::with_next_page(output::wallet_text(&wallet), &next),
    );
    Ok(())
}

pub(super) async fn exchange(conn: &Conn<'_>, args: Vec<String>, request_id: Option<String>) -> Result<(), Failure> {
    let global = conn.global;
    let (customer_id, rest) = cli::optional_customer(args, 2);
    let customer_id = conn.customer(customer_id)?;
    let [reward_id, gift_code]: [String; 2] =
        rest.try_into().map_err(|_| Failure::Token("exchange: [CUSTOMER_ID] REWARD_ID GIFT_CODE".into()))?;
    let r = wallet_client(conn)
        .await?
        .exchange_reward(wallet::v1::ExchangeRewardRequest {
            customer_id,
            reward_id,
            gift_code,
            request_id: request_id.unwrap_or_default(),
        })
        .await?
        .into_inner();
    emit(global, || output::exchange_json(&r), || output::exchange_text(&r));
    Ok(())
}

pub(super) async fn exchange_status(conn: &Conn<'_>) -> Result<(), Failure> {
    let global = conn.global;
    let r = wallet_client(conn).await?.get_exchange_status(wallet::v1::GetExchangeStatusRequest {}).await?.into_inner();
    emit(global, || output::exchange_status_json(&r), || output::exchange_status_text(&r));
    Ok(())
}
