use store_adapter::testing::TestDatabase;

use super::*;

async fn open(db: &TestDatabase) -> SqlAuth {
    SqlAuth::new(Store::open(&db.url, MIGRATIONS).await.unwrap())
}

fn entry(action: AuditAction, subject: &str) -> AuditEntry {
    AuditEntry::new("ops", action, subject, "admin", Utc::now())
}

async fn accounts_are_stored_once_and_their_role_changes_by_version_with_audit_and_revocation(db: TestDatabase) {
    let repo = open(&db).await;
    let a = Account::register(CustomerId::new("c-11").unwrap(), "$argon2id$...".into());
    repo.insert(&a, None).await.unwrap();
    assert_eq!(repo.insert(&a, None).await, Err(StoreError::Duplicate));
    let mut stored = repo.get(&a.customer_id).await.unwrap().unwrap();
    assert_eq!(stored, a);
    stored.grant(Role::Admin).unwrap();
    repo.update(&stored, entry(AuditAction::RoleGranted, "c-11"), None).await.unwrap();
    assert_eq!(repo.update(&stored, entry(AuditAction::RoleGranted, "c-11"), None).await, Err(StoreError::Conflict));
    let mut back = repo.get(&a.customer_id).await.unwrap().unwrap();
    assert_eq!((back.role, back.version), (Role::Admin, 1));
    back.revoke(Role::Admin, "ops").unwrap();
    let r = Revocation { subject: "c-11".into(), before: 1_900_000_000 };
    repo.update(&back, entry(AuditAction::RoleRevoked, "c-11"), Some(r.clone())).await.unwrap();
    assert_eq!(repo.get(&a.customer_id).await.unwrap().unwrap().role, Role::Player);
    assert_eq!(repo.revocation("c-11").await.unwrap(), Some(r));
    let trail = repo.audit_entries(Some("c-11"), 10).await.unwrap();
    let actions: Vec<_> = trail.iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::RoleRevoked, AuditAction::RoleGranted], "newest first");
    assert!(repo.get(&CustomerId::new("nobody").unwrap()).await.unwrap().is_none());
}

async fn service_accounts_are_created_once_and_provisioning_replaces_their_secret(db: TestDatabase) {
    let repo = open(&db).await;
    let id = ClientId::parse("svc-wallet").unwrap();
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let a = ServiceAccount::new(id.clone(), "$argon2id$one".into(), Role::Service, "ops", now).unwrap();
    repo.insert_service_account(&a, entry(AuditAction::ServiceAccountCreated, "svc-wallet")).await.unwrap();
    let again = repo.insert_service_account(&a, entry(AuditAction::ServiceAccountCreated, "svc-wallet")).await;
    assert_eq!(again, Err(StoreError::Duplicate));
    assert_eq!(repo.get_service_account(&id).await.unwrap(), Some(a.clone()));
    let b = ServiceAccount { secret_hash: "$argon2id$two".into(), ..a.clone() };
    repo.put_service_account(&b, entry(AuditAction::ServiceAccountProvisioned, "svc-wallet")).await.unwrap();
    assert_eq!(repo.get_service_account(&id).await.unwrap().unwrap().secret_hash, "$argon2id$two");
    let other = ClientId::parse("svc-new").unwrap();
    let c = ServiceAccount::new(other.clone(), "$argon2id$x".into(), Role::GameServer, "bootstrap", now).unwrap();
    repo.put_service_account(&c, entry(AuditAction::ServiceAccountProvisioned, "svc-new")).await.unwrap();
    assert_eq!(repo.get_service_account(&other).await.unwrap(), Some(c));
    assert_eq!(repo.audit_entries(None, 2).await.unwrap().len(), 2, "limited");
}

async fn a_revocation_only_moves_later_and_old_ones_are_not_listed(db: TestDatabase) {
    let repo = open(&db).await;
    let r = |subject: &str, before| Revocation { subject: subject.into(), before };
    repo.revoke(&r("a", 100), entry(AuditAction::TokensRevoked, "a")).await.unwrap();
    repo.revoke(&r("a", 300), entry(AuditAction::TokensRevoked, "a")).await.unwrap();
    repo.revoke(&r("a", 200), entry(AuditAction::TokensRevoked, "a")).await.unwrap();
    repo.revoke(&r("b", 150), entry(AuditAction::TokensRevoked, "b")).await.unwrap();
    assert_eq!(repo.revocation("a").await.unwrap(), Some(r("a", 300)));
    assert_eq!(repo.revocations_since(0).await.unwrap(), [r("a", 300), r("b", 150)]);
    assert_eq!(repo.revocations_since(200).await.unwrap(), [r("a", 300)]);
    assert_eq!(repo.revocation("c").await.unwrap(), None);
}

async fn throttle_counters_are_saved_by_version_and_pruned_when_they_no_longer_count(db: TestDatabase) {
    let repo = open(&db).await;
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let fresh = Counter { failures: 1, since: now, blocked_until: None, known_until: None, version: None };
    let keys = ["p|1.2.3.4|alice", "a|1.2.3.4"];
    assert_eq!(repo.counters(keys).await.unwrap(), [None, None]);
    repo.save([(keys[0], &fresh), (keys[1], &fresh)]).await.unwrap();
    assert_eq!(repo.save([(keys[0], &fresh), (keys[1], &fresh)]).await, Err(StoreError::Duplicate));
    let [pair, address] = repo.counters(keys).await.unwrap();
    let (pair, address) = (pair.unwrap(), address.unwrap());
    assert_eq!((pair.failures, pair.version), (1, Some(0)));
    let blocked = Counter { failures: 4, blocked_until: Some(now + chrono::Duration::seconds(1)), ..pair.clone() };
    repo.save([(keys[0], &blocked), (keys[1], &address)]).await.unwrap();
    // The same versions again: someone else saved first.
    assert_eq!(repo.save([(keys[0], &blocked), (keys[1], &address)]).await, Err(StoreError::Conflict));
    let [pair, _] = repo.counters(keys).await.unwrap();
    assert_eq!(pair.unwrap().blocked_until, blocked.blocked_until);
    let later = now + chrono::Duration::hours(2);
    assert_eq!(repo.prune(now, later).await.unwrap(), 0, "nothing older than `before`");
    assert_eq!(repo.prune(now + chrono::Duration::seconds(1), later).await.unwrap(), 2);
    assert_eq!(repo.counters(keys).await.unwrap(), [None, None]);
    // An owner known at an address is remembered past the others.
    let known = Counter { known_until: Some(later + chrono::Duration::days(30)), ..fresh.clone() };
    repo.save([(keys[0], &known), (keys[1], &fresh)]).await.unwrap();
    assert_eq!(repo.prune(now + chrono::Duration::seconds(1), later).await.unwrap(), 1, "the address only");
    let [pair, address] = repo.counters(keys).await.unwrap();
    assert_eq!((pair.unwrap().known_until, address), (known.known_until, None));
}

store_adapter::on_both_backends!(
    accounts_are_stored_once_and_their_role_changes_by_version_with_audit_and_revocation,
    service_accounts_are_created_once_and_provisioning_replaces_their_secret,
    a_revocation_only_moves_later_and_old_ones_are_not_listed,
    throttle_counters_are_saved_by_version_and_pruned_when_they_no_longer_count,
);
