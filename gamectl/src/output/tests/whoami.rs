//! `gamectl whoami` and the durations it shows.

use serde_json::json;

use super::super::*;

fn claims(exp: Option<i64>) -> crate::auth::Claims {
    crate::auth::Claims {
        sub: "alice".into(),
        role: "customer".into(),
        exp,
        iss: Some("game-rewards".into()),
        payload: json!({"sub": "alice", "role": "customer", "exp": exp}),
    }
}

#[test]
fn durations_are_short() {
    assert_eq!(duration(3600), "1h");
    assert_eq!(duration(90), "1m30s");
    assert_eq!(duration(0), "0s");
    assert_eq!(duration(3725), "1h2m5s");
}

#[test]
fn whoami_says_who_what_and_until_when() {
    let exp = 1_767_225_600; // 2026-01-01T00:00:00Z
    assert_eq!(
        whoami_text(&claims(Some(exp)), exp - 3600, "/data/token"),
        "customer  alice\n\
         role      customer\n\
         issuer    game-rewards\n\
         expires   2026-01-01T00:00:00Z (in 1h)\n\
         token     /data/token"
    );
    let late = whoami_text(&claims(Some(exp)), exp + 120, "--token");
    assert!(late.contains("(expired 2m ago: run gamectl login)"), "{late}");
    let v = whoami_json(&claims(Some(exp)), exp + 1, "--token");
    assert_eq!(v["customerId"], "alice");
    assert_eq!(v["role"], "customer");
    assert_eq!(v["expiresAt"], "2026-01-01T00:00:00Z");
    assert_eq!(v["expired"], true);
    assert_eq!(v["claims"]["exp"], exp);
    assert!(whoami_text(&claims(None), 0, "x").contains("expires   never"));
}
