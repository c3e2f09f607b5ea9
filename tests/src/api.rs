//! The calls tests make over and over, with the happy answer unwrapped.

use contracts::pb::mission::v1 as mission;
use contracts::pb::mypage::v1 as mypage;
use contracts::pb::reward::v1 as reward;
use contracts::pb::wallet::v1 as wallet;

use super::System;
use super::clients::*;

/// A player reports a mission for themselves (a `player` mission, within its rule).
pub async fn achieve(sys: &System, customer: &str, code: &str, request_id: &str) -> mission::Mission {
    MissionServiceClient::new(sys.as_customer(&sys.mission, customer))
        .achieve_mission(mission::AchieveMissionRequest {
            customer_id: customer.into(),
            mission_code: code.into(),
            request_id: request_id.into(),
        })
        .await
        .expect("achieve")
        .into_inner()
        .mission
        .expect("mission")
}

/// The game server reports that a customer achieved a mission (any mission, within
/// its rule; `match-played` as often as wanted).
pub async fn report(sys: &System, customer: &str, code: &str, request_id: &str) -> mission::Mission {
    MissionServiceClient::new(sys.as_game_server(&sys.mission))
        .achieve_mission(mission::AchieveMissionRequest {
            customer_id: customer.into(),
            mission_code: code.into(),
            request_id: request_id.into(),
        })
        .await
        .unwrap_or_else(|s| panic!("report {code} for {customer}: {s:?}"))
        .into_inner()
        .mission
        .expect("mission")
}

pub async fn rewards(sys: &System, customer: &str) -> Vec<reward::Reward> {
    RewardServiceClient::new(sys.as_customer(&sys.reward, customer))
        .list_rewards(reward::ListRewardsRequest { customer_id: customer.into(), ..Default::default() })
        .await
        .expect("rewards")
        .into_inner()
        .rewards
}

pub async fn wallet_of(sys: &System, customer: &str) -> wallet::Wallet {
    WalletServiceClient::new(sys.as_customer(&sys.wallet, customer))
        .get_wallet(wallet::GetWalletRequest { customer_id: customer.into(), ..Default::default() })
        .await
        .expect("wallet")
        .into_inner()
        .wallet
        .expect("wallet")
}

pub async fn missions(sys: &System, customer: &str) -> Vec<mission::Mission> {
    MissionServiceClient::new(sys.as_customer(&sys.mission, customer))
        .list_missions(mission::ListMissionsRequest { customer_id: customer.into(), ..Default::default() })
        .await
        .expect("missions")
        .into_inner()
        .missions
}

pub async fn page(sys: &System, customer: &str) -> mypage::MyPage {
    MyPageServiceClient::new(sys.as_customer(&sys.mypage, customer))
        .get_my_page(mypage::GetMyPageRequest { customer_id: customer.into(), ..Default::default() })
        .await
        .expect("page")
        .into_inner()
        .page
        .expect("page")
}

/// The game server reports a mission and the test waits until its reward is ISSUED in
/// the wallet; returns the wallet item.
pub async fn issued_reward(sys: &System, customer: &str, code: &str) -> wallet::WalletItem {
    let m = report(sys, customer, code, "").await;
    super::eventually(std::time::Duration::from_secs(30), "the reward reaches the wallet", || async {
        wallet_of(sys, customer).await.items.into_iter().find(|i| i.mission_id == m.mission_id)
    })
    .await
}
