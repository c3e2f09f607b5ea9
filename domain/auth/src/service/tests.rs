use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::executor::block_on;

use super::*;
use crate::throttle::Counter;

/// Faithful to the ports' contracts, in memory.
#[derive(Default)]
struct Memory {
    accounts: Mutex<HashMap<CustomerId, Account>>,
    services: Mutex<HashMap<String, ServiceAccount>>,
    revocations: Mutex<HashMap<String, i64>>,
    audit: Mutex<Vec<AuditEntry>>,
    counters: Mutex<HashMap<String, Counter>>,
}

impl AccountRepository for Memory {
    async fn get(&self, c: &CustomerId) -> Result<Option<Account>, StoreError> {
        Ok(self.accounts.lock().unwrap().get(c).cloned())
    }
    async fn insert(&self, a: &Account, audit: Option<AuditEntry>) -> Result<(), StoreError> {
        let mut m = self.accounts.lock().unwrap();
        if m.contains_key(&a.customer_id) {
            return Err(StoreError::Duplicate);
        }
        m.insert(a.customer_id.clone(), a.clone());
        self.audit.lock().unwrap().extend(audit);
        Ok(())
    }
    async fn update(&self, a: &Account, audit: AuditEntry, r: Option<Revocation>) -> Result<(), StoreError> {
        let mut m = self.accounts.lock().unwrap();
        let stored = m.get_mut(&a.customer_id).ok_or(StoreError::Conflict)?;
        if stored.version != a.version {
            return Err(StoreError::Conflict);
        }
        *stored = Account { version: a.version + 1, ..a.clone() };
        self.audit.lock().unwrap().push(audit);
        if let Some(r) = r {
            self.revocations.lock().unwrap().insert(r.subject, r.before);
        }
        Ok(())
    }
    async fn get_service_account(&self, c: &ClientId) -> Result<Option<ServiceAccount>, StoreError> {
        Ok(self.services.lock().unwrap().get(c.as_str()).cloned())
    }
    async fn insert_service_account(&self, a: &ServiceAccount, audit: AuditEntry) -> Result<(), StoreError> {
        let mut m = self.services.lock().unwrap();
        if m.contains_key(a.client_id.as_str()) {
            return Err(StoreError::Duplicate);
        }
        m.insert(a.client_id.to_string(), a.clone());
        self.audit.lock().unwrap().push(audit);
        Ok(())
    }
    async fn put_service_account(&self, a: &ServiceAccount, audit: AuditEntry) -> Result<(), StoreError> {
        self.services.lock().unwrap().insert(a.client_id.to_string(), a.clone());
        self.audit.lock().unwrap().push(audit);
        Ok(())
    }
    async fn revoke(&self, r: &Revocation, audit: AuditEntry) -> Result<(), StoreError> {
        self.revocations.lock().unwrap().insert(r.subject.clone(), r.before);
        self.audit.lock().unwrap().push(audit);
        Ok(())
    }
    async fn revocation(&self, subject: &str) -> Result<Option<Revocation>, StoreError> {
        let before = self.revocations.lock().unwrap().get(subject).copied();
        Ok(before.map(|before| Revocation { subject: subject.to_owned(), before }))
    }
    async fn revocations_since(&self, since: i64) -> Result<Vec<Revocation>, StoreError> {
        let m = self.revocations.lock().unwrap();
        Ok(m.iter().filter(|(_, b)| **b > since).map(|(s, b)| Revocation { subject: s.clone(), before: *b }).collect())
    }
    async fn audit_entries(&self, subject: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let all = self.audit.lock().unwrap();
        Ok(all.iter().rev().filter(|e| subject.is_none_or(|s| e.subject == s)).take(limit).cloned().collect())
    }
}

impl LoginThrottleRepository for Memory {
    async fn counters(&self, keys: [&str; 2]) -> Result<[Option<Counter>; 2], StoreError> {
        let m = self.counters.lock().unwrap();
        Ok(keys.map(|k| m.get(k).cloned()))
    }
    async fn save(&self, counters: [(&str, &Counter); 2]) -> Result<(), StoreError> {
        let mut m = self.counters.lock().unwrap();
        for (k, c) in counters {
            if m.get(k).and_then(|s| s.version) != c.version {
                return Err(StoreError::Conflict);
            }
        }
        for (k, c) in counters {
            m.insert(k.to_owned(), Counter { version: Some(c.version.map_or(0, |v| v + 1)), ..c.clone() });
        }
        Ok(())
    }
    async fn prune(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut m = self.counters.lock().unwrap();
        let n = m.len();
        m.retain(|_, c| {
            c.since >= before || c.blocked_until.is_some_and(|u| u > now) || c.known_until.is_some_and(|u| u > now)
        });
        Ok((n - m.len()) as u64)
    }
}

/// Reversible "hashing" for tests: the point is the flow, not the cryptography.
struct Plain;
impl PasswordHasher for Plain {
    async fn hash(&self, p: &Password) -> Result<String, String> {
        Ok(format!("plain:{}", p.expose()))
    }
    async fn verify(&self, p: &Password, hash: &str) -> bool {
        hash == format!("plain:{}", p.expose())
    }
    fn new_secret(&self) -> Result<Password, String> {
        Ok(Password::new(&format!("secret-{}", kernel::new_id().simple())).unwrap())
    }
}

struct Signer;
impl TokenSigner for Signer {
    fn sign(&self, s: &str, role: Role, holder: Holder, min_iat: Option<i64>) -> Result<(String, i64), String> {
        let ttl = if holder == Holder::Customer { 3600 } else { 600 };
        Ok((format!("token-for-{s}-{role}-{}", min_iat.unwrap_or(0)), ttl))
    }
}

type Service = AuthService<Memory, Memory, Plain, Signer>;

fn service() -> Service {
    AuthService::new(Memory::default(), Memory::default(), Plain, Signer, ThrottlePolicy::default())
}

const HOME: Option<&str> = Some("198.51.100.7");
const ATTACKER: Option<&str> = Some("203.0.113.66");

fn refused_for(e: AuthError) -> Option<Duration> {
    match e {
        AuthError::Refused(LoginRefusal::Throttled { retry_after }) => Some(retry_after),
        _ => None,
    }
}

#[test]
fn given_a_registered_customer_when_the_password_is_right_then_a_player_token_is_issued() {
    let s = service();
    block_on(s.register("c-11", "correct horse")).unwrap();
    let t = block_on(s.issue_token("c-11", "correct horse", HOME)).unwrap();
    assert_eq!((t.access_token.as_str(), t.expires_in), ("token-for-c-11-player-0", 3600));
    assert!(matches!(block_on(s.register("c-11", "another one")), Err(AuthError::AlreadyRegistered)));
}

#[test]
fn a_customer_cannot_register_a_service_account_id_nor_become_admin_by_name() {
    let s = service();
    let e = block_on(s.register("svc-wallet", "correct horse")).unwrap_err();
    assert!(matches!(e, AuthError::Invalid(v) if v.field == "customer_id"));
    block_on(s.register("admin", "correct horse")).unwrap();
    assert!(block_on(s.issue_token("admin", "correct horse", HOME)).unwrap().access_token.contains("-player-"));
}

#[test]
fn unknown_customers_and_wrong_passwords_get_the_same_answer() {
    let s = service();
    block_on(s.register("c-11", "correct horse")).unwrap();
    let unknown = block_on(s.issue_token("nobody", "whatever-password", HOME)).unwrap_err();
    let wrong = block_on(s.issue_token("c-11", "wrong password", HOME)).unwrap_err();
    assert_eq!(unknown.to_string(), wrong.to_string());
}

#[test]
fn given_an_attacker_failing_from_one_address_then_the_owner_logs_in_from_another_at_once() {
    let s = service();
    block_on(s.register("victim", "correct horse")).unwrap();
    let mut slowed = 0;
    for _ in 0..50 {
        let e = block_on(s.issue_token("victim", "wrong guess!", ATTACKER)).unwrap_err();
        if let Some(wait) = refused_for(e) {
            assert!(wait <= Duration::from_secs(1));
            slowed += 1;
        }
    }
    assert_eq!(slowed, 46, "three free failures, a fourth, then the attacker waits");
    let e = block_on(s.issue_token("victim", "correct horse", ATTACKER)).unwrap_err();
    assert!(refused_for(e).is_some(), "the attacker's address waits even with the right password");
    block_on(s.issue_token("victim", "correct horse", HOME)).expect("the owner, elsewhere, is not held up");
}

#[test]
fn given_failures_over_many_accounts_from_one_address_then_that_address_is_slowed_but_its_known_owners_get_in() {
    let s = service();
    block_on(s.register("victim", "correct horse")).unwrap();
    block_on(s.register("neighbour", "correct horse")).unwrap();
    // The neighbour logs in from the carrier's NAT, the attacker's address too.
    block_on(s.issue_token("neighbour", "correct horse", ATTACKER)).unwrap();
    for i in 0..20 {
        let e = block_on(s.issue_token(&format!("user-{i}"), "wrong guess!", ATTACKER)).unwrap_err();
        assert!(refused_for(e).is_none(), "attempt {i} is checked");
    }
    let e = block_on(s.issue_token("victim", "correct horse", ATTACKER)).unwrap_err();
    assert!(refused_for(e).is_some_and(|w| w <= Duration::from_secs(60)), "slowed, not blocked");
    block_on(s.issue_token("neighbour", "correct horse", ATTACKER)).expect("known there: not held up at all");
    block_on(s.issue_token("victim", "correct horse", HOME)).unwrap();
}

#[test]
fn a_right_password_clears_its_addresss_failures_for_that_account() {
    let s = service();
    block_on(s.register("c-11", "correct horse")).unwrap();
    for _ in 0..3 {
        assert!(refused_for(block_on(s.issue_token("c-11", "typo typo", HOME)).unwrap_err()).is_none());
    }
    block_on(s.issue_token("c-11", "correct horse", HOME)).unwrap();
    for _ in 0..3 {
        assert!(refused_for(block_on(s.issue_token("c-11", "typo typo", HOME)).unwrap_err()).is_none(), "free again");
    }
    assert_eq!(block_on(s.prune_throttle()).unwrap(), 0, "nothing old to forget");
}

#[test]
fn the_first_admin_is_made_once_and_an_existing_account_is_left_alone() {
    let s = service();
    assert_eq!(block_on(s.ensure_first_admin("admin", "first admin pw")).unwrap(), FirstAdmin::Created);
    assert_eq!(block_on(s.ensure_first_admin("admin", "other password")).unwrap(), FirstAdmin::Exists(Role::Admin));
    assert!(block_on(s.issue_token("admin", "first admin pw", HOME)).unwrap().access_token.contains("-admin-"));
    assert!(matches!(block_on(s.register("admin", "correct horse")), Err(AuthError::AlreadyRegistered)));
    let audit = block_on(s.audit("admin", 0)).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].actor.as_str(), audit[0].action), ("bootstrap", AuditAction::AdminCreated));
    assert!(
        matches!(block_on(s.ensure_first_admin("admin2", "short")), Err(AuthError::Invalid(v)) if v.field == "password")
    );
}

#[test]
fn given_a_granted_admin_when_the_role_is_revoked_then_their_tokens_are_revoked_and_both_are_audited() {
    let s = service();
    block_on(s.register("carol", "correct horse")).unwrap();
    let (a, changed) = block_on(s.grant_role("admin", "carol", "admin")).unwrap();
    assert!(changed);
    assert_eq!(a.role, Role::Admin);
    assert!(!block_on(s.grant_role("admin", "carol", "admin")).unwrap().1, "no change the second time");
    assert!(block_on(s.issue_token("carol", "correct horse", HOME)).unwrap().access_token.contains("-admin-"));
    assert!(matches!(
        block_on(s.revoke_role("carol", "carol", "admin")),
        Err(AuthError::Role(RoleRefusal::OwnAdminRole))
    ));
    let (a, changed) = block_on(s.revoke_role("admin", "carol", "admin")).unwrap();
    assert!(changed && a.role == Role::Player);
    let revoked = block_on(s.revocation("carol")).unwrap().expect("tokens revoked");
    let t = block_on(s.issue_token("carol", "correct horse", HOME)).unwrap();
    assert_eq!(t.access_token, format!("token-for-carol-player-{}", revoked.before), "new tokens are issued after it");
    let audit = block_on(s.audit("carol", 0)).unwrap();
    let actions: Vec<_> = audit.iter().map(|e| (e.actor.as_str(), e.action, e.detail.as_str())).collect();
    assert_eq!(actions, [("admin", AuditAction::RoleRevoked, "admin"), ("admin", AuditAction::RoleGranted, "admin")]);
    assert!(matches!(block_on(s.grant_role("admin", "nobody", "admin")), Err(AuthError::NotFound("customer"))));
    assert!(
        matches!(block_on(s.grant_role("admin", "carol", "root")), Err(AuthError::Invalid(v)) if v.field == "role")
    );
}

#[test]
fn a_service_account_gets_a_secret_once_and_logs_in_with_its_role() {
    let s = service();
    let (account, secret) = block_on(s.create_service_account("admin", "match-server", "game_server")).unwrap();
    assert_eq!(account.client_id.as_str(), "svc-match-server");
    assert_eq!(account.secret_hash, format!("plain:{}", secret.expose()), "kept hashed");
    let t = block_on(s.issue_service_token("svc-match-server", secret.expose(), HOME)).unwrap();
    assert_eq!((t.access_token.as_str(), t.expires_in), ("token-for-svc-match-server-game_server-0", 600));
    let wrong = block_on(s.issue_service_token("svc-match-server", "wrong secret", HOME)).unwrap_err();
    assert!(matches!(wrong, AuthError::Refused(LoginRefusal::BadCredentials)));
    assert!(matches!(
        block_on(s.create_service_account("admin", "match-server", "service")),
        Err(AuthError::AlreadyExists(_))
    ));
    assert!(
        matches!(block_on(s.create_service_account("admin", "x", "admin")), Err(AuthError::Invalid(v)) if v.field == "role")
    );
}

#[test]
fn provisioned_service_accounts_are_created_updated_and_left_alone_when_unchanged() {
    let s = service();
    let wallet = |hash: &str| Provisioned {
        client_id: ClientId::parse("svc-wallet").unwrap(),
        role: Role::Service,
        secret_hash: hash.into(),
    };
    assert_eq!(block_on(s.provision(&[wallet("plain:first secret")])).unwrap(), 1);
    assert_eq!(block_on(s.provision(&[wallet("plain:first secret")])).unwrap(), 0);
    assert!(
        block_on(s.issue_service_token("svc-wallet", "first secret", HOME)).unwrap().access_token.contains("-service-")
    );
    assert_eq!(block_on(s.provision(&[wallet("plain:second secret")])).unwrap(), 1);
    assert!(block_on(s.issue_service_token("svc-wallet", "first secret", HOME)).is_err());
    block_on(s.issue_service_token("svc-wallet", "second secret", HOME)).unwrap();
}

#[test]
fn revoking_tokens_is_audited_and_listed_until_it_no_longer_matters() {
    let s = service();
    block_on(s.register("dave", "correct horse")).unwrap();
    let r = block_on(s.revoke_tokens("admin", "dave", false)).unwrap();
    assert!(r.before > Utc::now().timestamp());
    assert_eq!(block_on(s.revocations(Duration::from_secs(3600))).unwrap(), std::slice::from_ref(&r));
    let entry = &block_on(s.audit("", 10)).unwrap()[0];
    assert_eq!(entry.action, AuditAction::TokensRevoked);
    let when =
        chrono::DateTime::from_timestamp(r.before, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(entry.detail, format!("issued before {when}"), "a time as every other one, not an epoch");
    assert!(
        matches!(block_on(s.revoke_tokens("admin", "", false)), Err(AuthError::Invalid(v)) if v.field == "customer_id")
    );
}

#[test]
fn given_no_such_subject_when_its_tokens_are_revoked_then_not_found_unless_said_external() {
    let s = service();
    assert!(matches!(block_on(s.revoke_tokens("admin", "bob", false)), Err(AuthError::NotFound(_))));
    assert!(block_on(s.revocations(Duration::from_secs(3600))).unwrap().is_empty(), "nothing revoked");
    assert!(block_on(s.audit("", 10)).unwrap().is_empty(), "nothing audited");
    let external = block_on(s.revoke_tokens("admin", "bob", true)).unwrap();
    assert_eq!(external.subject, "bob", "another identity provider's subject");
}

#[test]
fn a_service_accounts_tokens_can_be_revoked_by_its_client_id() {
    let s = service();
    let (account, _) = block_on(s.create_service_account("admin", "match-server", "game_server")).unwrap();
    block_on(s.revoke_tokens("admin", account.client_id.as_str(), false)).unwrap();
}

#[test]
fn a_second_revocation_in_the_same_second_refuses_the_token_issued_after_the_first() {
    let s = service();
    block_on(s.register("c-11", "correct horse")).unwrap();
    let first = block_on(s.revoke_tokens("admin", "c-11", false)).unwrap();
    let between = block_on(s.issue_token("c-11", "correct horse", HOME)).unwrap();
    assert!(between.access_token.ends_with(&format!("-{}", first.before)), "iat = the first revocation");
    let second = block_on(s.revoke_tokens("admin", "c-11", false)).unwrap();
    assert!(second.before > first.before, "the token issued between them is refused too");
}

#[test]
fn bad_registrations_name_the_field() {
    let s = service();
    assert!(
        matches!(block_on(s.register("", "correct horse")), Err(AuthError::Invalid(v)) if v.field == "customer_id")
    );
    assert!(matches!(block_on(s.register("c-1", "short")), Err(AuthError::Invalid(v)) if v.field == "password"));
}
