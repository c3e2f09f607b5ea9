//! The reads phase: GetWallet and GetMyPage through the gateway and straight to the
//! services.

use std::sync::Arc;

use contracts::pb::mypage::v1 as mypage;
use contracts::pb::wallet::v1 as wallet;
use e2e::{System, with_token};
use mypage::my_page_service_client::MyPageServiceClient;
use tonic::transport::Channel;
use wallet::wallet_service_client::WalletServiceClient;

use super::{Player, channels};
use crate::cli::Plan;
use crate::drive::{FnWorker, closed_loop};
use crate::hist::{Outcome, grpc};
use crate::progress::Progress;
use crate::report::Results;

type BoxedCall = std::pin::Pin<Box<dyn Future<Output = Option<Outcome>> + Send>>;

fn get_wallet(ch: Channel, p: &Player) -> BoxedCall {
    let mut c = WalletServiceClient::new(with_token(ch, &p.token));
    let req = wallet::GetWalletRequest { customer_id: p.id.clone(), ..Default::default() };
    Box::pin(async move { Some(grpc(c.get_wallet(req).await)) })
}

fn get_my_page(ch: Channel, p: &Player) -> BoxedCall {
    let mut c = MyPageServiceClient::new(with_token(ch, &p.token));
    let req = mypage::GetMyPageRequest { customer_id: p.id.clone(), ..Default::default() };
    Box::pin(async move { Some(grpc(c.get_my_page(req).await)) })
}

pub(super) async fn reads(plan: &Plan, progress: &Progress, sys: &Arc<System>, players: &[Player], r: &mut Results) {
    let players: Arc<Vec<Player>> = Arc::new(players.iter().take(512).cloned().collect());
    progress.phase("reads: GetWallet and GetMyPage, gateway and direct", plan.short * 4);
    let gw = sys.gateway().url();
    let n = plan.players;
    // `n` clients, each reading the next player's own page or wallet with their token.
    let run = |url: String, read: fn(Channel, &Player) -> BoxedCall| {
        let players = players.clone();
        async move {
            let workers = channels(&url, n)
                .into_iter()
                .enumerate()
                .map(|(i, ch)| {
                    let players = players.clone();
                    let mut k = i;
                    FnWorker(move || {
                        let p = &players[k % players.len()];
                        k += n;
                        read(ch.clone(), p)
                    })
                })
                .collect();
            closed_loop(workers, plan.short, None).await.summary()
        }
    };
    let wallet_run = |url| run(url, get_wallet);
    let page_run = |url| run(url, get_my_page);
    r.reads.get_wallet_gateway = wallet_run(gw.clone()).await;
    r.reads.get_wallet_direct = wallet_run(sys.wallet.url()).await;
    r.reads.get_my_page_gateway = page_run(gw.clone()).await;
    r.reads.get_my_page_direct = page_run(sys.mypage.url()).await;
}
