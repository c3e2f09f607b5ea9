//! Plain HTTP/JSON at the gateway (issue 29): the Connect protocol's unary JSON, driven
//! with `curl` exactly as the README shows it, on the real binaries. A game server gets
//! its service-account token and reports `first-win` for a player; a player registers,
//! logs in, achieves and reads the wallet. Refusals are Connect errors with the gRPC
//! status's code and ErrorInfo: a bad JSON body (`invalid_argument`, nothing written), an
//! unknown method (`unimplemented`), no token (`unauthenticated`), a rule refusal
//! (`failed_precondition` with its reason), and a huge body refused before it is read.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{Options, System, eventually};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// `curl -X POST <gateway>/<path> -H 'content-type: application/json' [-H 'authorization:
/// Bearer <token>'] -d <body>`: the HTTP status and the JSON answered.
fn curl(sys: &System, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    curl_with(sys, path, token, body, &[])
}

/// [`curl`] with more headers.
fn curl_with(sys: &System, path: &str, token: Option<&str>, body: &str, headers: &[&str]) -> (u16, Value) {
    let url = format!("{}/{path}", sys.gateway().url());
    let mut cmd = Command::new("curl");
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.args(["-sS", "-X", "POST", &url, "-H", "content-type: application/json", "--data-binary", "@-"]);
    cmd.args(["-w", "\n%{http_code}", "--max-time", "20"]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("curl is installed");
    child.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("body sent");
    let out = child.wait_with_output().expect("curl ran");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (json, code) = text.rsplit_once('\n').unwrap_or_else(|| panic!("curl {path}: {text}"));
    let code: u16 = code.trim().parse().unwrap_or_else(|_| panic!("curl {path}: {text}"));
    let json = serde_json::from_str(json).unwrap_or_else(|e| panic!("curl {path} ({code}): not JSON ({e}): {json}"));
    (code, json)
}

fn ok(sys: &System, path: &str, token: Option<&str>, body: &Value) -> Value {
    let (code, json) = curl(sys, path, token, &body.to_string());
    assert_eq!(code, 200, "{path}: {json}");
    json
}

const AUTH: &str = "game.auth.v1.AuthService";
const MISSION: &str = "game.mission.v1.MissionService";
const WALLET: &str = "game.wallet.v1.WalletService";

#[tokio::test]
async fn a_game_server_and_a_player_use_the_system_with_curl_and_json() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let admin = sys.admin_token().await;

    // An operator makes the game server's account; the game server logs in with it.
    let account = ok(
        &sys,
        &format!("{AUTH}/CreateServiceAccount"),
        Some(&admin),
        &json!({"name": "match-server", "role": "game_server"}),
    );
    let (client_id, secret) = (account["clientId"].as_str().unwrap(), account["clientSecret"].as_str().unwrap());
    assert_eq!(client_id, "svc-match-server", "{account}");
    let issued =
        ok(&sys, &format!("{AUTH}/IssueServiceToken"), None, &json!({"clientId": client_id, "clientSecret": secret}));
    let game_server = issued["accessToken"].as_str().expect("a token").to_owned();

    // A player registers and logs in.
    ok(&sys, &format!("{AUTH}/RegisterCustomer"), None, &json!({"customerId": "alice", "password": PASSWORD}));
    let login = ok(&sys, &format!("{AUTH}/IssueToken"), None, &json!({"customerId": "alice", "password": PASSWORD}));
    let alice = login["accessToken"].as_str().expect("a token").to_owned();

    // The game server reports first-win for her; she reports her daily login herself
    // (her token names her: no customerId needed).
    let won = ok(
        &sys,
        &format!("{MISSION}/AchieveMission"),
        Some(&game_server),
        &json!({"customerId": "alice", "missionCode": "first-win", "requestId": "match-7"}),
    );
    assert_eq!(
        (won["mission"]["customerId"].as_str(), won["mission"]["missionCode"].as_str()),
        (Some("alice"), Some("first-win"))
    );
    let daily = ok(&sys, &format!("{MISSION}/AchieveMission"), Some(&alice), &json!({"missionCode": "daily-login"}));
    assert_eq!(daily["mission"]["customerId"], "alice", "{daily}");

    // Her wallet fills: 50 + 10 points (int64 is a string in proto3 JSON).
    let wallet = eventually(Duration::from_secs(30), "both rewards in the wallet", || async {
        let w = ok(&sys, &format!("{WALLET}/GetWallet"), Some(&alice), &json!({}));
        (w["wallet"]["items"].as_array().map(Vec::len) == Some(2)).then_some(w)
    })
    .await;
    assert_eq!(wallet["wallet"]["balance"], "60", "{wallet}");

    // A rule refusal: failed_precondition with the ErrorInfo, as gRPC has it.
    let (code, again) = curl(
        &sys,
        &format!("{MISSION}/AchieveMission"),
        Some(&alice),
        &json!({"missionCode": "daily-login"}).to_string(),
    );
    assert_eq!((code, again["code"].as_str()), (400, Some("failed_precondition")), "{again}");
    assert_eq!(again["details"][0]["type"], "google.rpc.ErrorInfo", "{again}");
    assert_eq!(again["details"][0]["debug"]["reason"], "MISSION_PERIOD_LIMIT_REACHED", "{again}");

    // A bad JSON body: invalid_argument, and nothing written.
    let count = |sys: &System| {
        let listed = ok(sys, &format!("{MISSION}/ListMissions"), Some(&alice), &json!({}));
        listed["missions"].as_array().map_or(0, Vec::len)
    };
    let before = count(&sys);
    for bad in [r#"{"missionCode": "tutorial-complete""#, r#"{"missionCode": 7}"#, r#"{"mission": "x"}"#] {
        let (code, e) = curl(&sys, &format!("{MISSION}/AchieveMission"), Some(&alice), bad);
        assert_eq!((code, e["code"].as_str()), (400, Some("invalid_argument")), "{bad}: {e}");
        assert!(e["message"].as_str().unwrap().contains("AchieveMissionRequest"), "{e}");
    }
    assert_eq!(count(&sys), before, "a refused body changed nothing");

    // An unknown method, a streaming one, no token.
    let (code, e) = curl(&sys, &format!("{MISSION}/NoSuchMethod"), Some(&alice), "{}");
    assert_eq!((code, e["code"].as_str()), (501, Some("unimplemented")), "{e}");
    let (code, e) = curl(&sys, "game.mypage.v1.MyPageService/WatchMyPage", Some(&alice), "{}");
    assert_eq!((code, e["code"].as_str()), (501, Some("unimplemented")), "streaming stays gRPC: {e}");
    let (code, e) = curl(&sys, &format!("{WALLET}/GetWallet"), None, "{}");
    assert_eq!((code, e["code"].as_str()), (401, Some("unauthenticated")), "{e}");
}

#[tokio::test]
async fn a_huge_json_body_is_refused_before_it_is_read_whole() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let token = sys.tokens.customer("bob");

    // Announced beyond the limit (4 MiB): refused at once, though not a byte was sent.
    let addr = sys.gateway().addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(addr).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let head = format!(
            "POST /{MISSION}/AchieveMission HTTP/1.1\r\nHost: {addr}\r\ncontent-type: application/json\r\n\
             authorization: Bearer {token}\r\ncontent-length: 8388608\r\nconnection: close\r\n\r\n"
        );
        conn.write_all(head.as_bytes()).expect("head sent");
        let mut raw = Vec::new();
        let _ = conn.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains(r#""code":"resource_exhausted""#), "{answer}");

    // Not announced (chunked), 5 MiB sent: cut at the limit, the same refusal.
    let big = format!(r#"{{"missionCode": "{}"}}"#, "x".repeat(5 * 1024 * 1024));
    let bob = sys.tokens.customer("bob");
    let chunked = ["transfer-encoding: chunked"];
    let (code, e) = curl_with(&sys, &format!("{MISSION}/AchieveMission"), Some(&bob), &big, &chunked);
    assert_eq!((code, e["code"].as_str()), (429, Some("resource_exhausted")), "{e}");
}
