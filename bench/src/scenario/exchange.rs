//! The exchange phase: healthy exchanges through the circuit breaker, then the gift
//! service stopped (the breaker trips) and the open breaker's fast failures.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::pb::wallet::v1 as wallet;
use e2e::{System, with_token};
use tonic::transport::Channel;
use wallet::wallet_service_client::WalletServiceClient;

use super::{Player, channels};
use crate::cli::Plan;
use crate::drive::{FnWorker, closed_loop};
use crate::hist::{Outcome, Recorder, grpc};
use crate::progress::Progress;
use crate::report::Results;

#[derive(Clone)]
struct Candidate {
    customer: String,
    token: String,
    reward_id: String,
}

async fn exchange_once(ch: Channel, c: &Candidate) -> (Outcome, bool) {
    let mut w = WalletServiceClient::new(with_token(ch, &c.token));
    let r = w
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: c.customer.clone(),
            reward_id: c.reward_id.clone(),
            gift_code: "coffee".into(),
            request_id: uuid::Uuid::now_v7().to_string(),
        })
        .await;
    let retry_after = r.as_ref().err().is_some_and(|s| s.metadata().get("retry-after").is_some());
    (grpc(r), retry_after)
}

async fn redeem_once(ch: Channel, p: &Player) -> Outcome {
    let mut w = WalletServiceClient::new(with_token(ch, &p.token));
    let r = w
        .redeem_gift(wallet::RedeemGiftRequest {
            customer_id: p.id.clone(),
            gift_code: "coffee".into(),
            request_id: uuid::Uuid::now_v7().to_string(),
        })
        .await;
    grpc(r)
}

/// Players to redeem a coffee (10 points) for, each as many times as their balance pays
/// (at most 8), taken in turn so that concurrent calls are mostly different customers'
/// (one customer's spends queue behind each other by design); `n` in all.
async fn redeemers(sys: &System, players: &[Player], n: usize) -> VecDeque<Player> {
    let mut affordable = Vec::new();
    for p in players.iter().take(n) {
        let w = WalletServiceClient::new(with_token(sys.wallet.channel(), &p.token))
            .get_wallet(wallet::GetWalletRequest { customer_id: p.id.clone(), ..Default::default() })
            .await;
        let balance = w.ok().and_then(|w| w.into_inner().wallet).map_or(0, |w| w.balance);
        affordable.push((p, (balance / 10).min(8)));
    }
    let mut queue = VecDeque::new();
    for round in 0..8 {
        queue.extend(affordable.iter().filter(|(_, k)| *k > round).map(|(p, _)| (*p).clone()));
    }
    queue.truncate(n);
    queue
}

async fn breaker_state(sys: &System) -> String {
    let state = WalletServiceClient::new(sys.as_admin(&sys.wallet))
        .get_exchange_status(wallet::GetExchangeStatusRequest {})
        .await
        .map(|s| s.into_inner().breaker_state);
    match state {
        Ok(s) => wallet::BreakerState::try_from(s).map_or_else(|_| s.to_string(), |b| b.as_str_name().to_owned()),
        Err(e) => format!("unknown ({})", e.code()),
    }
}

pub(super) async fn exchanges(
    plan: &Plan,
    progress: &Progress,
    sys: &mut Arc<System>,
    players: &[Player],
    r: &mut Results,
) -> Result<(), String> {
    progress.phase("exchange through the breaker, gift healthy", plan.exchange_time);
    let reserve = 8;
    let mut candidates = VecDeque::new();
    for p in players {
        if candidates.len() >= plan.exchanges + reserve {
            break;
        }
        let w = WalletServiceClient::new(with_token(sys.wallet.channel(), &p.token))
            .get_wallet(wallet::GetWalletRequest { customer_id: p.id.clone(), ..Default::default() })
            .await;
        if let Ok(w) = w {
            for item in w.into_inner().wallet.map(|w| w.items).unwrap_or_default() {
                // worth a coffee (a match played is worth 1 point)
                if item.status == wallet::WalletItemStatus::Issued as i32 && item.points >= 10 {
                    candidates.push_back(Candidate {
                        customer: p.id.clone(),
                        token: p.token.clone(),
                        reward_id: item.reward_id,
                    });
                }
            }
        }
    }
    if candidates.len() < 2 {
        return Err("no ISSUED reward to exchange".into());
    }
    let spare: Vec<Candidate> = candidates.split_off(candidates.len().saturating_sub(reserve).max(1)).into();
    candidates.truncate(plan.exchanges);
    let queue = Arc::new(Mutex::new(candidates));
    let gw = sys.gateway().url();
    let concurrency = 4;
    let workers: Vec<_> = channels(&gw, concurrency)
        .into_iter()
        .map(|ch| {
            let queue = queue.clone();
            FnWorker(move || {
                let next = queue.lock().expect("queue").pop_front();
                let ch = ch.clone();
                async move { Some(exchange_once(ch, &next?).await.0) }
            })
        })
        .collect();
    let e = &mut r.exchange;
    e.concurrency = concurrency;
    e.healthy_gateway = closed_loop(workers, plan.exchange_time, None).await.summary();

    progress.phase("RedeemGift from the balance, gift healthy", plan.exchange_time);
    let queue = Arc::new(Mutex::new(redeemers(sys, players, plan.exchanges).await));
    let workers: Vec<_> = channels(&gw, concurrency)
        .into_iter()
        .map(|ch| {
            let queue = queue.clone();
            FnWorker(move || {
                let next = queue.lock().expect("queue").pop_front();
                let ch = ch.clone();
                async move { Some(redeem_once(ch, &next?).await) }
            })
        })
        .collect();
    let e = &mut r.exchange;
    e.redeem_gateway = closed_loop(workers, plan.exchange_time, None).await.summary();

    progress.phase("exchange with gift stopped: tripping the breaker", Duration::from_secs(2));
    let s = Arc::get_mut(sys).ok_or("the system is still shared")?;
    tokio::task::block_in_place(|| s.gift.stop());
    let mut tripping = Recorder::default();
    let start = Instant::now();
    for i in 0..20 {
        let t = Instant::now();
        let (outcome, _) = exchange_once(sys.gateway().channel(), &spare[i % spare.len()]).await;
        tripping.record(t.elapsed(), outcome);
        if breaker_state(sys).await == "BREAKER_STATE_OPEN" {
            break;
        }
    }
    e.tripping_gateway = tripping.summary(start.elapsed());
    e.breaker_after_trip = breaker_state(sys).await;

    progress.phase("exchange with the breaker open: fast-fail", plan.exchange_time * 2);
    let open_run = |url: String| {
        let spare = spare.clone();
        async move {
            let retry_after = Arc::new(AtomicU64::new(0));
            let workers: Vec<_> = channels(&url, concurrency)
                .into_iter()
                .enumerate()
                .map(|(i, ch)| {
                    let (spare, retry_after) = (spare.clone(), retry_after.clone());
                    let mut k = i;
                    FnWorker(move || {
                        let c = spare[k % spare.len()].clone();
                        k += 1;
                        let (ch, retry_after) = (ch.clone(), retry_after.clone());
                        async move {
                            let (o, ra) = exchange_once(ch, &c).await;
                            if ra {
                                retry_after.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(o)
                        }
                    })
                })
                .collect();
            let summary = closed_loop(workers, plan.exchange_time, None).await.summary();
            (summary, retry_after.load(Ordering::Relaxed))
        }
    };
    (e.open_gateway, e.open_with_retry_after) = open_run(gw.clone()).await;
    (e.open_direct, _) = open_run(sys.wallet.url()).await;
    e.breaker_at_end = breaker_state(sys).await;
    Ok(())
}
