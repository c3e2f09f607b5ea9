use base64_like::encode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::*;
use crate::{KeyRing, Role, TokenIssuer};

mod base64_like {
    /// URL-safe base64 without padding, as tokens are written.
    pub fn encode(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    issuer: TokenIssuer,
    verifier: Arc<Verifier>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ring = KeyRing::open(dir.path().join("keys"), Duration::from_secs(3600)).unwrap();
    let issuer = TokenIssuer {
        ring: ring.clone(),
        issuer: "game-rewards".into(),
        audience: "game-rewards".into(),
        ttl: Duration::from_secs(3600),
    };
    let verifier = Verifier::with_keys(&ring.jwks().unwrap(), vec!["game-rewards".into()], "game-rewards");
    Fixture { _dir: dir, issuer, verifier }
}

fn claims(f: &Fixture) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: "c-11".into(),
        iss: f.issuer.issuer.clone(),
        aud: serde_json::json!("game-rewards"),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: "j".into(),
        role: Some("customer".into()),
        realm_access: None,
    }
}

#[test]
fn a_token_we_issued_verifies_with_its_subject_and_role() {
    let f = fixture();
    let (token, ttl) = f.issuer.issue("c-11", Role::Player).unwrap();
    assert_eq!(ttl, 3600);
    let id = f.verifier.verify(&token).unwrap();
    assert_eq!((id.customer_id.as_str(), id.role), ("c-11", Role::Player));
    let (admin, _) = f.issuer.issue("ops", Role::Admin).unwrap();
    assert!(f.verifier.verify(&admin).unwrap().is_admin());
}

#[test]
fn garbage_and_missing_headers_are_refused() {
    let f = fixture();
    assert_eq!(f.verifier.verify("not.a.token"), Err(AuthError::Malformed));
    assert_eq!(f.verifier.verify(""), Err(AuthError::Malformed));
    assert_eq!(crate::bearer(None), Err(AuthError::Missing));
    assert_eq!(crate::bearer(Some("Basic abc")), Err(AuthError::Malformed));
    assert_eq!(crate::bearer(Some("Bearer  t ")), Ok("t"));
}

#[test]
fn a_wrong_signature_is_refused() {
    let f = fixture();
    let (token, _) = f.issuer.issue("c-11", Role::Player).unwrap();
    let (head, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", encode(&[7u8; 64]));
    assert_eq!(f.verifier.verify(&forged), Err(AuthError::BadSignature));
    // a token signed by a key of the same id that is not ours
    let other = fixture();
    let mut c = claims(&f);
    c.sub = "attacker".into();
    let (kid, _) = f.issuer.ring.active().unwrap();
    let (_, foreign_key) = other.issuer.ring.active().unwrap();
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some(kid);
    let token = jsonwebtoken::encode(&h, &c, &foreign_key).unwrap();
    assert_eq!(f.verifier.verify(&token), Err(AuthError::BadSignature));
}

#[test]
fn alg_none_and_symmetric_tricks_are_refused() {
    let f = fixture();
    let (kid, _) = f.issuer.ring.active().unwrap();
    let header = encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#).as_bytes());
    let body = encode(serde_json::to_string(&claims(&f)).unwrap().as_bytes());
    assert!(f.verifier.verify(&format!("{header}.{body}.")).is_err());
    // HS256 "signed" with the public key as secret: the key says EdDSA, so no.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid);
    let token = jsonwebtoken::encode(&h, &claims(&f), &EncodingKey::from_secret(b"public")).unwrap();
    assert_eq!(f.verifier.verify(&token), Err(AuthError::BadAlgorithm));
}

#[test]
fn expired_not_yet_valid_wrong_issuer_and_audience_are_refused() {
    let f = fixture();
    let now = chrono::Utc::now().timestamp();
    let mut c = claims(&f);
    c.exp = now - 120;
    assert_eq!(f.verifier.verify(&f.issuer.sign(&c).unwrap()), Err(AuthError::Expired));
    let mut c = claims(&f);
    c.nbf = now + 600;
    assert_eq!(f.verifier.verify(&f.issuer.sign(&c).unwrap()), Err(AuthError::NotYetValid));
    let mut c = claims(&f);
    c.iss = "someone-else".into();
    assert_eq!(f.verifier.verify(&f.issuer.sign(&c).unwrap()), Err(AuthError::WrongIssuer));
    let mut c = claims(&f);
    c.aud = serde_json::json!(["another-app"]);
    assert_eq!(f.verifier.verify(&f.issuer.sign(&c).unwrap()), Err(AuthError::WrongAudience));
}

#[test]
fn an_unknown_key_is_refused_and_keycloak_roles_are_understood() {
    let f = fixture();
    let other = fixture();
    let (token, _) = other.issuer.issue("c-11", Role::Player).unwrap();
    assert_eq!(f.verifier.verify(&token), Err(AuthError::UnknownKey));
    let mut c = claims(&f);
    c.role = None;
    c.realm_access = Some(crate::RealmAccess { roles: vec!["offline_access".into(), "admin".into()] });
    assert!(f.verifier.verify(&f.issuer.sign(&c).unwrap()).unwrap().is_admin());
}

#[test]
fn after_rotation_old_tokens_still_verify_and_new_ones_use_the_new_key() {
    let f = fixture();
    let (old, _) = f.issuer.issue("c-11", Role::Player).unwrap();
    let old_kid = f.issuer.ring.active().unwrap().0;
    let new_kid = f.issuer.ring.rotate().unwrap();
    assert_ne!(old_kid, new_kid);
    let (new, _) = f.issuer.issue("c-11", Role::Player).unwrap();
    let jwks = f.issuer.ring.jwks().unwrap();
    let kids: Vec<_> = jwks.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(kids, vec![old_kid, new_kid.clone()], "both keys are published");
    let v = Verifier::with_keys(&jwks, vec!["game-rewards".into()], "game-rewards");
    v.verify(&old).unwrap();
    assert_eq!(jsonwebtoken::decode_header(&new).unwrap().kid, Some(new_kid));
    v.verify(&new).unwrap();
}

#[test]
fn a_retired_key_leaves_the_jwks_once_its_tokens_have_expired() {
    let dir = tempfile::tempdir().unwrap();
    // tokens live 0 s, so a retired key stays for the minute of clock leeway only
    let ring = KeyRing::open(dir.path(), Duration::ZERO).unwrap();
    let first = ring.active().unwrap().0;
    let second = ring.rotate().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    // back-date: the first key made 200 s ago, retired by the second 120 s ago
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        let (age, kid) = if name.ends_with(&format!("{first}.pem")) { (200_000, &first) } else { (120_000, &second) };
        std::fs::rename(&p, dir.path().join(format!("{}-{kid}.pem", now - age))).unwrap();
    }
    let kids: Vec<_> = ring.jwks().unwrap().keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(kids, vec![second.clone()]);
    assert_eq!(ring.active().unwrap().0, second);
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_its_key_is_withdrawn_or_it_expires() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, serde_json::to_vec(&f.issuer.ring.jwks().unwrap()).unwrap()).unwrap();
    let settings = AuthSettings {
        issuers: vec!["game-rewards".into()],
        audience: "game-rewards".into(),
        jwks_urls: vec![],
        jwks_files: vec![file.clone()],
        refresh_seconds: 60,
        revocation_urls: vec![],
        revocation_key_file: None,
        revocation_refresh_seconds: 2.0,
    };
    let v = Verifier::new(&settings).unwrap();
    v.refresh().await.unwrap();
    // valid for about one more second (the leeway is 30 s)
    let mut c = claims(&f);
    c.exp = chrono::Utc::now().timestamp() - LEEWAY.cast_signed() + 1;
    let short = f.issuer.sign(&c).unwrap();
    let (long, _) = f.issuer.issue("c-11", Role::Player).unwrap();
    v.verify(&short).unwrap();
    v.verify(&long).unwrap();
    v.verify(&long).unwrap(); // the second time from memory
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(v.verify(&short), Err(AuthError::Expired));
    std::fs::write(&file, serde_json::to_vec(&fixture().issuer.ring.jwks().unwrap()).unwrap()).unwrap();
    v.refresh().await.unwrap();
    assert_eq!(v.verify(&long), Err(AuthError::UnknownKey), "the withdrawn key's tokens are no longer accepted");
}

#[test]
fn a_revocation_refuses_earlier_tokens_even_remembered_ones_and_not_later_ones() {
    let f = fixture();
    let (old, _) = f.issuer.issue("c-11", Role::Player).unwrap();
    let (other, _) = f.issuer.issue("c-12", Role::Player).unwrap();
    assert_eq!(f.verifier.verify(&old).unwrap().customer_id, "c-11", "verified and remembered");
    // Revoked in this very second: recorded as "before the next second".
    let before = chrono::Utc::now().timestamp() + 1;
    f.verifier.set_revocations(&[Revocation { subject: "c-11".into(), before }]);
    assert_eq!(f.verifier.verify(&old), Err(AuthError::Revoked), "the remembered token too");
    assert!(f.verifier.verify(&other).is_ok(), "another subject's token is untouched");
    // A token issued after the revocation, still within its second, carries iat >= before.
    let (new, _) = f.issuer.issue_with("c-11", Role::Player, Duration::from_secs(60), Some(before)).unwrap();
    assert_eq!(f.verifier.verify(&new).unwrap().issued_at, before);
    f.verifier.set_revocations(&[]);
    assert!(f.verifier.verify(&old).is_ok(), "lifted");
    assert!(crate::revoked(10, Some(11)) && !crate::revoked(11, Some(11)) && !crate::revoked(1, None));
}

#[tokio::test]
async fn revocations_come_from_the_auth_service_and_survive_its_outage() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("revocation.key");
    std::fs::write(&key_file, format!("{}\n", "k".repeat(64))).unwrap();
    let key = crate::revocation::RevocationKey::from_file(&key_file).unwrap();
    let body = serde_json::to_string(&key.publish(&[Revocation { subject: "c-11".into(), before: i64::MAX }])).unwrap();
    // Answers one request, then goes away.
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf).await;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(answer.as_bytes()).await.unwrap();
    });
    let f = fixture();
    let settings = AuthSettings {
        issuers: vec!["game-rewards".into()],
        audience: "game-rewards".into(),
        jwks_urls: vec![],
        jwks_files: vec![],
        refresh_seconds: 60,
        revocation_urls: vec![format!("http://{addr}/revocations")],
        revocation_key_file: Some(key_file.clone()),
        revocation_refresh_seconds: 2.0,
    };
    // without the key, no revocations are fetched at all: refused at start
    let keyless = AuthSettings { revocation_key_file: None, ..settings.clone() };
    assert!(Verifier::new(&keyless).err().unwrap().contains("required with REVOCATION_URLS"));
    let v = Verifier::new(&settings).unwrap();
    v.set_revocations(&[]);
    *v.keys.write().unwrap() = keys_of(&f.issuer.ring.jwks().unwrap());
    let (token, _) = f.issuer.issue("c-11", Role::Player).unwrap();
    assert!(v.verify(&token).is_ok());
    let mut changes = v.changes();
    assert_eq!(v.refresh_revocations().await, Ok(1));
    assert_eq!(v.verify(&token), Err(AuthError::Revoked));
    assert!(changes.has_changed().unwrap(), "streams learn of the new revocation");
    changes.mark_unchanged();
    assert!(v.refresh_revocations().await.is_err(), "the server is gone");
    assert_eq!(v.verify(&token), Err(AuthError::Revoked), "the revocation is kept through the outage");
    assert!(!changes.has_changed().unwrap(), "nothing changed");
}

#[test]
fn streams_learn_of_a_change_of_the_revocations_and_of_nothing_else() {
    let f = fixture();
    let mut changes = f.verifier.changes();
    let list = [Revocation { subject: "c-11".into(), before: 100 }];
    f.verifier.set_revocations(&list);
    assert!(changes.has_changed().unwrap());
    changes.mark_unchanged();
    f.verifier.set_revocations(&list);
    assert!(!changes.has_changed().unwrap(), "the same list again is no change");
    f.verifier.set_revocations(&[Revocation { subject: "c-11".into(), before: 200 }]);
    assert!(changes.has_changed().unwrap(), "a later revocation of the same subject is one");
}

#[test]
fn rotations_within_one_millisecond_still_make_the_newest_key_sign() {
    let dir = tempfile::tempdir().unwrap();
    let ring = KeyRing::open(dir.path(), Duration::from_secs(3600)).unwrap();
    let mut kids = vec![ring.active().unwrap().0];
    for _ in 0..20 {
        let kid = ring.rotate().unwrap();
        assert_eq!(ring.active().unwrap().0, kid, "the key made last signs");
        kids.push(kid);
    }
    let published: Vec<_> = ring.jwks().unwrap().keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(published, kids, "published in the order they were made");
}
