//! Refunds and adjustments on both backends.

use chrono::Utc;
use kernel::{StoreError, new_id};
use store_adapter::testing::TestDatabase;
use uuid::Uuid;
use wallet_domain::correction::{plan_debit, plan_refund};
use wallet_domain::ledger::Movement;
use wallet_domain::service::LEASE_TTL;
use wallet_domain::{
    Correction, CorrectionCommit, CorrectionKind, Draw, EntryKind, ItemStatus, Spend, WalletItem, WalletRepository,
};

use super::{customer, earn, open, spend, sum_of_entries};
use crate::store::SqlWallet;

/// A correction of `amount` for c-11 with its entry, read from the account as it is now.
async fn correction(
    repo: &SqlWallet,
    kind: CorrectionKind,
    amount: i64,
    request_id: &str,
    lots: Vec<Draw>,
) -> (Correction, wallet_domain::LedgerEntry) {
    let mut account = repo.account(&customer()).await.unwrap();
    let entry_kind =
        if matches!(kind, CorrectionKind::Refund { .. }) { EntryKind::Refunded } else { EntryKind::Adjusted };
    let m = Movement {
        kind: entry_kind,
        amount,
        reference: "test".into(),
        actor: "admin-1".into(),
        reason: "goodwill".into(),
    };
    let entry = account.record(m, new_id(), Utc::now()).unwrap();
    let c = Correction {
        correction_id: new_id(),
        customer_id: customer(),
        kind,
        request_id: request_id.into(),
        amount,
        reason: "goodwill".into(),
        actor: "admin-1".into(),
        entry_id: entry.entry_id,
        balance_after: entry.balance_after,
        lots,
        at: entry.at,
    };
    (c, entry)
}

async fn refund_commit(repo: &SqlWallet, spend: &Spend, request_id: &str) -> CorrectionCommit {
    let mut items = Vec::new();
    for d in &spend.draws {
        items.extend(repo.get(d.reward_id).await.unwrap());
    }
    let restored = plan_refund(spend, &items).unwrap();
    let kind = CorrectionKind::Refund { gift_id: spend.gift_id };
    let (correction, entry) = correction(repo, kind, spend.cost, request_id, spend.draws.clone()).await;
    CorrectionCommit { correction, entry, items: restored, new_lot: None, holder: None }
}

fn same_but_time(found: Correction, expected: &Correction) {
    assert!((found.at - expected.at).abs() < chrono::Duration::milliseconds(1));
    assert_eq!(found, Correction { at: found.at, ..expected.clone() });
}

async fn a_refund_gives_the_points_back_to_the_lots_of_the_spend_once_per_gift(db: TestDatabase) {
    let (store, repo) = open(&db).await;
    let small = earn(&repo, 10).await;
    let big = earn(&repo, 100).await;
    let holder = new_id();
    assert!(repo.take_lease(&customer(), holder, LEASE_TTL).await.unwrap());
    let commit = spend(&repo, 50, "s-1", holder).await.unwrap();
    let paid = commit.spend.clone();
    repo.commit_spend(commit).await.unwrap();
    let found = repo.find_spend_by_gift(paid.gift_id).await.unwrap().expect("the spend of the gift");
    assert_eq!(
        (found.spend_id, found.customer_id.clone(), found.draws.clone()),
        (paid.spend_id, customer(), paid.draws.clone())
    );
    assert!(repo.find_spend_by_gift(new_id()).await.unwrap().is_none());
    assert!(repo.refund_of(paid.gift_id).await.unwrap().is_none());

    let refund = refund_commit(&repo, &found, "f-1").await;
    let expected = refund.correction.clone();
    repo.commit_correction(refund).await.unwrap();
    for (lot, points) in [(&small, 10), (&big, 100)] {
        let back = repo.get(lot.reward_id).await.unwrap().unwrap();
        assert_eq!((back.remaining, back.status, back.gift_id), (points, ItemStatus::Issued, None));
    }
    assert_eq!(repo.account(&customer()).await.unwrap().balance, 110);
    assert_eq!(sum_of_entries(&store, "c-11").await, 110);
    same_but_time(repo.refund_of(paid.gift_id).await.unwrap().expect("refunded"), &expected);
    same_but_time(repo.correction("f-1").await.unwrap().expect("by its request"), &expected);
    let refunded = repo.ledger(&customer(), Some(EntryKind::Refunded), Default::default()).await.unwrap().items;
    assert_eq!(
        refunded.iter().map(|e| (e.amount, e.actor.as_str(), e.reason.as_str())).collect::<Vec<_>>(),
        vec![(50, "admin-1", "goodwill")]
    );

    // Twice: the gift is refunded once, whatever the request id.
    let kind = CorrectionKind::Refund { gift_id: paid.gift_id };
    let (twice, entry) = correction(&repo, kind, 50, "f-2", paid.draws.clone()).await;
    let again = CorrectionCommit { correction: twice, entry, items: vec![], new_lot: None, holder: None };
    assert_eq!(repo.commit_correction(again).await, Err(StoreError::Duplicate));
    assert_eq!(repo.account(&customer()).await.unwrap().balance, 110, "nothing written");
    assert!(repo.correction("f-2").await.unwrap().is_none());
}

async fn an_adjustment_credits_a_new_lot_or_debits_the_lots_under_the_lease_once_per_request(db: TestDatabase) {
    let (store, repo) = open(&db).await;
    let reward = earn(&repo, 10).await;
    let holder = new_id();
    assert!(repo.take_lease(&customer(), holder, LEASE_TTL).await.unwrap());
    let lot = WalletItem::credit(new_id(), customer(), 25);
    let credit_lots = vec![Draw { reward_id: lot.reward_id, points: 25 }];
    let (credit, entry) = correction(&repo, CorrectionKind::Adjustment, 25, "a-1", credit_lots).await;
    let commit = CorrectionCommit {
        correction: credit.clone(),
        entry,
        items: vec![],
        new_lot: Some(lot.clone()),
        holder: Some(holder),
    };
    repo.commit_correction(commit).await.unwrap();
    assert_eq!(repo.get(lot.reward_id).await.unwrap().unwrap(), lot, "a new lot");
    assert_eq!(repo.account(&customer()).await.unwrap().balance, 35);
    same_but_time(repo.correction("a-1").await.unwrap().unwrap(), &credit);
    let other: Uuid = new_id();
    assert!(repo.take_lease(&customer(), other, LEASE_TTL).await.unwrap(), "the lease was given back");

    // A debit draws from the lots, oldest first; without the lease it is refused.
    let (draws, items) = plan_debit(&repo.lots(&customer()).await.unwrap(), 15).unwrap();
    assert_eq!(
        draws,
        vec![Draw { reward_id: reward.reward_id, points: 10 }, Draw { reward_id: lot.reward_id, points: 5 }]
    );
    let (debit, entry) = correction(&repo, CorrectionKind::Adjustment, -15, "a-2", draws).await;
    let commit = CorrectionCommit { correction: debit, entry, items, new_lot: None, holder: Some(holder) };
    assert_eq!(repo.commit_correction(commit.clone()).await, Err(StoreError::Conflict), "holder lost the lease");
    let commit = CorrectionCommit { holder: Some(other), ..commit };
    repo.commit_correction(commit.clone()).await.unwrap();
    let emptied = repo.get(reward.reward_id).await.unwrap().unwrap();
    assert_eq!((emptied.remaining, emptied.status), (0, ItemStatus::Exchanged));
    assert_eq!(repo.get(lot.reward_id).await.unwrap().unwrap().remaining, 20);
    assert_eq!((repo.account(&customer()).await.unwrap().balance, sum_of_entries(&store, "c-11").await), (20, 20));

    // The same commit again: the account moved. A new one under a used request id: refused.
    assert!(repo.take_lease(&customer(), other, LEASE_TTL).await.unwrap());
    assert_eq!(repo.commit_correction(commit).await, Err(StoreError::Conflict));
    let (reused, entry) = correction(&repo, CorrectionKind::Adjustment, 5, "a-2", vec![]).await;
    let reused = CorrectionCommit { correction: reused, entry, items: vec![], new_lot: None, holder: None };
    assert_eq!(repo.commit_correction(reused).await, Err(StoreError::Duplicate));
    assert_eq!(repo.account(&customer()).await.unwrap().balance, 20, "nothing written");
}

store_adapter::on_both_backends!(
    a_refund_gives_the_points_back_to_the_lots_of_the_spend_once_per_gift,
    an_adjustment_credits_a_new_lot_or_debits_the_lots_under_the_lease_once_per_request,
);
