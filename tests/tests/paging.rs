//! Reads that stay small (AIP-158): every list of a customer's things is read page by
//! page, newest first, through the gateway; the wallet answers its balance with the first
//! page and `ListWalletItems` the rest; bad paging input is refused naming the field, and a
//! page token is good only for the list that returned it.

use std::collections::HashSet;
use std::time::Duration;

use e2e::api as flow;
use e2e::clients::*;
use e2e::{Options, System, eventually, with_token};
use grpc_adapter::pb::gift::v1 as gift;
use grpc_adapter::pb::mission::v1 as mission;
use grpc_adapter::pb::mypage::v1 as mypage;
use grpc_adapter::pb::notification::v1 as notification;
use grpc_adapter::pb::notification::v1::notification_service_client::NotificationServiceClient;
use grpc_adapter::pb::reward::v1 as reward;
use grpc_adapter::pb::wallet::v1 as wallet;
use tonic::Code;

const FLOW: Duration = Duration::from_secs(30);
const MISSIONS: usize = 7;

/// Every page of a list read `size` at a time: the items and how many pages it took.
async fn all_pages<T, Fut>(size: i32, mut page: impl FnMut(i32, String) -> Fut) -> (Vec<T>, usize)
where
    Fut: Future<Output = (Vec<T>, String)>,
{
    let (mut items, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let (got, next) = page(size, token).await;
        pages += 1;
        assert!(got.len() <= usize::try_from(size).unwrap(), "a page holds at most page_size items");
        items.extend(got);
        if next.is_empty() {
            return (items, pages);
        }
        token = next;
    }
}

fn refused(r: Result<(), tonic::Status>, field: &str, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.code(), Code::InvalidArgument, "{what}: {}", e.message());
    assert!(e.message().starts_with(field), "{what}: the message names {field}: {}", e.message());
}

#[tokio::test]
async fn a_customer_s_lists_are_read_newest_first_page_by_page_through_the_gateway() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let me = || with_token(sys.gateway().channel(), &sys.tokens.customer("pia"));
    let mut reported = Vec::new();
    for i in 0..MISSIONS {
        reported.push(flow::report(&sys, "pia", "match-played", &format!("m-{i}")).await.mission_id);
    }
    let balance = eventually(FLOW, "every reward reaches the wallet", || async {
        let w = WalletServiceClient::new(me())
            .get_wallet(wallet::GetWalletRequest { customer_id: "pia".into(), page_size: 3 })
            .await
            .ok()?
            .into_inner();
        (w.wallet.as_ref()?.available_points == MISSIONS as i64).then_some(w)
    })
    .await;

    // missions: newest first, 3 + 3 + 1, no gaps, no repeats
    let (missions, pages) = all_pages(3, |page_size, page_token| async move {
        let r = MissionServiceClient::new(me())
            .list_missions(mission::ListMissionsRequest { customer_id: "pia".into(), page_size, page_token })
            .await
            .expect("a page of missions")
            .into_inner();
        (r.missions, r.next_page_token)
    })
    .await;
    let newest_first: Vec<String> = reported.iter().rev().cloned().collect();
    assert_eq!(missions.into_iter().map(|m| m.mission_id).collect::<Vec<_>>(), newest_first);
    assert_eq!(pages, 3);

    // rewards: all of them once, newest first
    let (rewards, _) = all_pages(2, |page_size, page_token| async move {
        let r = RewardServiceClient::new(me())
            .list_rewards(reward::ListRewardsRequest { customer_id: "pia".into(), page_size, page_token })
            .await
            .expect("a page of rewards")
            .into_inner();
        (r.rewards, r.next_page_token)
    })
    .await;
    let ids: Vec<String> = rewards.iter().map(|r| r.reward_id.clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest (highest UUIDv7) first");
    assert_eq!(
        rewards.iter().map(|r| r.mission_id.clone()).collect::<HashSet<_>>(),
        reported.iter().cloned().collect()
    );

    // the wallet: the balance of every item with the first page; the others page by page
    let first = balance.wallet.expect("wallet");
    assert_eq!(first.items.len(), 3);
    assert!(!balance.next_page_token.is_empty());
    let mut items = first.items;
    let mut token = balance.next_page_token;
    while !token.is_empty() {
        let r = WalletServiceClient::new(me())
            .list_wallet_items(wallet::ListWalletItemsRequest {
                customer_id: "pia".into(),
                page_size: 3,
                page_token: token,
            })
            .await
            .expect("a page of items")
            .into_inner();
        items.extend(r.items);
        token = r.next_page_token;
    }
    let rewards_in_wallet: HashSet<_> = items.iter().map(|i| i.reward_id.clone()).collect();
    assert_eq!((items.len(), rewards_in_wallet), (MISSIONS, ids.into_iter().collect()));
}

#[tokio::test]
async fn bad_paging_input_is_refused_naming_the_field_and_a_token_reads_only_its_own_list() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let as_ = |who: &str| with_token(sys.gateway().channel(), &sys.tokens.customer(who));
    for i in 0..3 {
        flow::report(&sys, "quin", "match-played", &format!("q-{i}")).await;
        flow::report(&sys, "rosa", "match-played", &format!("r-{i}")).await;
    }
    let c = || "quin".to_owned();
    for (size, token, field) in
        [(-1, "", "page_size"), (10, "not-a-token", "page_token"), (10, "cDF8eHx5", "page_token")]
    {
        let t = || token.to_owned();
        refused(
            MissionServiceClient::new(as_("quin"))
                .list_missions(mission::ListMissionsRequest { customer_id: c(), page_size: size, page_token: t() })
                .await
                .map(drop),
            field,
            "ListMissions",
        );
        refused(
            RewardServiceClient::new(as_("quin"))
                .list_rewards(reward::ListRewardsRequest { customer_id: c(), page_size: size, page_token: t() })
                .await
                .map(drop),
            field,
            "ListRewards",
        );
        refused(
            WalletServiceClient::new(as_("quin"))
                .list_wallet_items(wallet::ListWalletItemsRequest {
                    customer_id: c(),
                    page_size: size,
                    page_token: t(),
                })
                .await
                .map(drop),
            field,
            "ListWalletItems",
        );
        refused(
            GiftServiceClient::new(as_("quin"))
                .list_gifts(gift::ListGiftsRequest { customer_id: c(), page_size: size, page_token: t() })
                .await
                .map(drop),
            field,
            "ListGifts",
        );
        refused(
            NotificationServiceClient::new(as_("quin"))
                .list_notifications(notification::ListNotificationsRequest {
                    customer_id: c(),
                    page_size: size,
                    page_token: t(),
                })
                .await
                .map(drop),
            field,
            "ListNotifications",
        );
        refused(
            MyPageServiceClient::new(as_("quin"))
                .get_my_page(mypage::GetMyPageRequest { customer_id: c(), page_size: size, page_token: t() })
                .await
                .map(drop),
            field,
            "GetMyPage",
        );
    }
    // a list's token is not a token of my page, nor my page's of a list
    let mine = eventually(FLOW, "quin's page holds more than one entry", || async {
        let r = MyPageServiceClient::new(as_("quin"))
            .get_my_page(mypage::GetMyPageRequest { customer_id: c(), page_size: 1, page_token: String::new() })
            .await
            .ok()?
            .into_inner();
        (!r.next_page_token.is_empty()).then_some(r)
    })
    .await;
    let missions = MissionServiceClient::new(as_("quin"))
        .list_missions(mission::ListMissionsRequest { customer_id: c(), page_size: 1, page_token: String::new() })
        .await
        .expect("quin's missions")
        .into_inner();
    assert!(!mine.next_page_token.is_empty() && !missions.next_page_token.is_empty());
    refused(
        MyPageServiceClient::new(as_("quin"))
            .get_my_page(mypage::GetMyPageRequest {
                customer_id: c(),
                page_size: 1,
                page_token: missions.next_page_token,
            })
            .await
            .map(drop),
        "page_token",
        "a missions token on my page",
    );
    refused(
        MissionServiceClient::new(as_("quin"))
            .list_missions(mission::ListMissionsRequest {
                customer_id: c(),
                page_size: 1,
                page_token: mine.next_page_token,
            })
            .await
            .map(drop),
        "page_token",
        "a my page token on missions",
    );
    refused(
        WalletServiceClient::new(as_("quin"))
            .get_wallet(wallet::GetWalletRequest { customer_id: c(), page_size: -5 })
            .await
            .map(drop),
        "page_size",
        "GetWallet",
    );

    // rosa's token, taken to quin's list (by an admin, who may read both) or to another of
    // rosa's lists, is not a token of that list
    let admin = sys.admin_token().await;
    let as_admin = || with_token(sys.gateway().channel(), &admin);
    let rosas = MissionServiceClient::new(as_("rosa"))
        .list_missions(mission::ListMissionsRequest {
            customer_id: "rosa".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("rosa's first page")
        .into_inner();
    assert_eq!(rosas.missions.len(), 1);
    assert!(!rosas.next_page_token.is_empty());
    refused(
        MissionServiceClient::new(as_admin())
            .list_missions(mission::ListMissionsRequest {
                customer_id: c(),
                page_size: 10,
                page_token: rosas.next_page_token.clone(),
            })
            .await
            .map(drop),
        "page_token",
        "rosa's token on quin's missions",
    );
    refused(
        RewardServiceClient::new(as_("rosa"))
            .list_rewards(reward::ListRewardsRequest {
                customer_id: "rosa".into(),
                page_size: 10,
                page_token: rosas.next_page_token.clone(),
            })
            .await
            .map(drop),
        "page_token",
        "a missions token on rewards",
    );
    // and with it, rosa's next page is hers
    let next = MissionServiceClient::new(as_("rosa"))
        .list_missions(mission::ListMissionsRequest {
            customer_id: "rosa".into(),
            page_size: 10,
            page_token: rosas.next_page_token,
        })
        .await
        .expect("rosa's second page")
        .into_inner();
    assert_eq!(next.missions.len(), 2);
    assert!(next.missions.iter().all(|m| m.customer_id == "rosa"));

    // ListWalletItems keeps the wallet's ownership rules: a player reads only their own
    let e = WalletServiceClient::new(as_("quin"))
        .list_wallet_items(wallet::ListWalletItemsRequest { customer_id: "rosa".into(), ..Default::default() })
        .await
        .expect_err("quin reads rosa's items");
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    let items = eventually(FLOW, "rosa's rewards reach her wallet", || async {
        let r = WalletServiceClient::new(as_admin())
            .list_wallet_items(wallet::ListWalletItemsRequest { customer_id: "rosa".into(), ..Default::default() })
            .await
            .ok()?
            .into_inner();
        (r.items.len() == 3).then_some(r.items)
    })
    .await;
    assert!(items.iter().all(|i| i.status == wallet::WalletItemStatus::Issued as i32));
}

/// Issue 24, item 1: a forged my page token naming archive chunk 2^64-1 once kept a
/// runtime worker busy for good (health checks timed out, SIGTERM did not stop mypage),
/// and chunk 3000 cost 0.43 s, growing with the square of the number. A cursor beyond the
/// page's chunks is refused at once, and mypage keeps answering meanwhile.
#[tokio::test]
async fn a_page_token_beyond_the_page_s_history_is_refused_at_once_and_mypage_stays_serving() {
    use base64::Engine as _;
    use std::time::Instant;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let sys = System::start().await;
    // 300 missions: five archive chunks and the recent entries
    e2e::seed::whale_page(&sys, "me", 300).await;
    let forged =
        |cursor: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("p1|{cursor}|mypage/me"));
    let read = |page_token: String| {
        let mut client = MyPageServiceClient::new(sys.as_customer(&sys.mypage, "me"));
        async move {
            let mut req =
                tonic::Request::new(mypage::GetMyPageRequest { customer_id: "me".into(), page_size: 0, page_token });
            req.set_timeout(Duration::from_secs(5));
            let at = Instant::now();
            let answer = client.get_my_page(req).await;
            (at.elapsed(), answer)
        }
    };
    // a token of this very list still reads on into the archive
    let (_, first) = read(String::new()).await;
    let next = first.expect("the first page").into_inner().next_page_token;
    assert_eq!(read(next).await.1.expect("the second page").into_inner().page.unwrap().entries.len(), 50);

    let health = || async {
        let mut req = tonic::Request::new(HealthCheckRequest { service: e2e::MYPAGE.into() });
        req.set_timeout(Duration::from_secs(1));
        HealthClient::new(sys.mypage.channel()).check(req).await.map(|r| r.into_inner().status)
    };
    let cpu = sys.mypage.cpu_time();
    // both at once (there are two runtime workers), and health asked right after them
    let (huge, big, serving) =
        tokio::join!(read(forged("a.18446744073709551615.0")), read(forged("a.3000.0")), async {
            tokio::task::yield_now().await;
            health().await
        });
    let cpu = sys.mypage.cpu_time() - cpu;
    eprintln!("a.2^64-1 answered in {:?}, a.3000 in {:?}; mypage used {cpu:?} of CPU", huge.0, big.0);
    for (what, (took, answer)) in [("a.18446744073709551615.0", huge), ("a.3000.0", big)] {
        let e = answer.expect_err(what);
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {}", e.message());
        assert!(e.message().starts_with("page_token"), "{what}: {}", e.message());
        assert!(took < Duration::from_secs(1), "{what} answered in {took:?}");
    }
    assert_eq!(serving.expect("health answers meanwhile"), ServingStatus::Serving as i32);
    assert!(cpu < Duration::from_secs(1), "mypage used {cpu:?} of CPU for two refusals");
    // and afterwards: no worker is left busy
    for _ in 0..5 {
        assert_eq!(health().await.expect("health answers"), ServingStatus::Serving as i32);
    }
}
