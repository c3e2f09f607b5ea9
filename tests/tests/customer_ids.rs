//! One customer, one spelling, on the real binaries: ids are NFKC-composed and
//! lower-cased wherever they enter (registering, logging in, a game server's report, an
//! admin's call), and ids with invisible characters are refused naming `customer_id`, so
//! nobody registers `admin\u{200B}`, `ADMIN` or `ａｄｍｉｎ` next to `admin`; and a game
//! server's report for an id nobody registered is refused, so nobody inherits points by
//! registering it later (issue 24, item 12).

use e2e::clients::*;
use e2e::{ADMIN, Options, System, with_token};
use grpc_adapter::pb::auth::v1 as auth;
use grpc_adapter::pb::mission::v1 as mission;
use tonic::Code;

const PASSWORD: &str = "correct horse battery";

async fn register(sys: &System, customer: &str) -> Result<String, tonic::Status> {
    AuthServiceClient::new(sys.gateway().channel())
        .register_customer(auth::RegisterCustomerRequest { customer_id: customer.into(), password: PASSWORD.into() })
        .await
        .map(|r| r.into_inner().customer_id)
}

async fn log_in(sys: &System, customer: &str) -> Result<String, tonic::Status> {
    AuthServiceClient::new(sys.gateway().channel())
        .issue_token(auth::IssueTokenRequest { customer_id: customer.into(), password: PASSWORD.into() })
        .await
        .map(|r| r.into_inner().access_token)
}

fn invalid_naming_customer_id(r: Result<impl std::fmt::Debug, tonic::Status>, raw: &str) -> tonic::Status {
    let e = r.expect_err(raw);
    assert_eq!(e.code(), Code::InvalidArgument, "{raw:?}: {e:?}");
    assert!(e.message().starts_with("customer_id:"), "{raw:?}: {}", e.message());
    e
}

async fn system() -> System {
    System::start_with(Options { gateway: true, registered_customers: true, ..Options::default() }).await
}

fn report(customer: &str, request_id: &str) -> mission::AchieveMissionRequest {
    mission::AchieveMissionRequest {
        customer_id: customer.into(),
        mission_code: "daily-login".into(),
        request_id: request_id.into(),
    }
}

#[tokio::test]
async fn lookalikes_of_admin_and_of_a_player_are_refused_or_are_the_same_account() {
    let sys = system().await;

    // Invisible characters: no id at all, the code point named.
    for (raw, cp) in [
        ("admin\u{200B}", "U+200B"),
        ("\u{FEFF}admin", "U+FEFF"),
        ("ad\u{200D}min", "U+200D"),
        ("admin\u{202E}", "U+202E"),
        ("admin\u{3164}", "U+3164"),
    ] {
        let e = invalid_naming_customer_id(register(&sys, raw).await, raw);
        assert!(e.message().contains(cp), "{raw:?}: {}", e.message());
    }
    // Another case, fullwidth or modifier letters: `admin` itself, taken.
    for raw in ["ADMIN", "Admin", "ａｄｍｉｎ", "ＡＤＭＩＮ", "ᴬᴰᴹᴵᴺ"] {
        let e = register(&sys, raw).await.expect_err(raw);
        assert_eq!(e.code(), Code::AlreadyExists, "{raw:?}: {e:?}");
    }
    // Nor a service account's id in disguise.
    for raw in ["SVC-wallet", "ｓｖｃ-gateway"] {
        invalid_naming_customer_id(register(&sys, raw).await, raw);
    }

    // A player registers as they like and is answered their one id; they log in however
    // they type it, and nobody registers it again in another case.
    assert_eq!(register(&sys, "Alice").await.unwrap(), "alice");
    for raw in ["alice", "ALICE", "ａｌｉｃｅ"] {
        assert_eq!(register(&sys, raw).await.unwrap_err().code(), Code::AlreadyExists, "{raw:?}");
    }
    let token = log_in(&sys, "ＡＬＩＣＥ").await.expect("alice logs in in fullwidth capitals");
    // A login under an id that cannot exist is refused like a wrong password.
    assert_eq!(log_in(&sys, "alice\u{200B}").await.unwrap_err().code(), Code::Unauthenticated);
    // Her token is alice's: she reads her own missions under any spelling of her id.
    MissionServiceClient::new(with_token(sys.gateway().channel(), &token))
        .list_missions(mission::ListMissionsRequest { customer_id: "Alice".into(), ..Default::default() })
        .await
        .expect("alice reads her missions");
    // The token names her: a player who leaves customer_id empty acts and reads as herself.
    let mut as_alice = MissionServiceClient::new(with_token(sys.gateway().channel(), &token));
    let tutorial = mission::AchieveMissionRequest { mission_code: "tutorial-complete".into(), ..report("", "own-1") };
    let mine = as_alice.achieve_mission(tutorial).await.expect("achieved as herself").into_inner();
    assert_eq!(mine.mission.expect("the mission").customer_id, "alice");
    let listed = as_alice
        .list_missions(mission::ListMissionsRequest { customer_id: String::new(), ..Default::default() })
        .await
        .expect("her missions, unnamed")
        .into_inner();
    assert_eq!(listed.missions.iter().map(|m| m.customer_id.as_str()).collect::<Vec<_>>(), ["alice"]);

    // A game server's report: the same customer, or refused.
    let mut game = MissionServiceClient::new(sys.as_game_server(&sys.mission));
    let m = game.achieve_mission(report("ＡＬＩＣＥ", "r-1")).await.expect("reported").into_inner().mission.unwrap();
    assert_eq!(m.customer_id, "alice");
    invalid_naming_customer_id(game.achieve_mission(report("alice\u{200B}", "r-2")).await, "a report");
    invalid_naming_customer_id(game.achieve_mission(report("", "r-4")).await, "a game server names the player");
    invalid_naming_customer_id(game.achieve_mission(report("alice\u{2066}", "r-3")).await, "a report");

    // Admin calls: the same customer, or refused.
    let admin = sys.admin_token().await;
    let mut as_admin = AuthServiceClient::new(with_token(sys.gateway().channel(), &admin));
    let granted = as_admin
        .grant_role(auth::GrantRoleRequest { customer_id: "ＡＬＩＣＥ".into(), role: "admin".into() })
        .await
        .expect("granted")
        .into_inner();
    assert_eq!(granted.customer_id, "alice");
    let e = as_admin
        .revoke_role(auth::RevokeRoleRequest { customer_id: "alice\u{200B}".into(), role: "admin".into() })
        .await;
    invalid_naming_customer_id(e, "revoke_role");
    let e = as_admin
        .revoke_tokens(auth::RevokeTokensRequest { customer_id: "alice\u{FEFF}".into(), external: false })
        .await;
    invalid_naming_customer_id(e, "revoke_tokens");
    let own = as_admin
        .revoke_role(auth::RevokeRoleRequest { customer_id: "ＡＤＭＩＮ".into(), role: "admin".into() })
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::FailedPrecondition, "ADMIN is the admin themselves: {own:?}");
    assert_eq!(ADMIN, "admin");
}

#[tokio::test]
async fn a_game_servers_report_for_an_id_nobody_registered_is_refused_and_nobody_inherits_it() {
    let sys = system().await;
    let mut game = MissionServiceClient::new(sys.as_game_server(&sys.mission));
    let mut through_gateway =
        MissionServiceClient::new(with_token(sys.gateway().channel(), &sys.tokens.game_server(e2e::GAME_SERVER)));

    // Before anyone holds the id: refused, saying what to do, and nothing recorded.
    for (who, e) in [
        ("direct", game.achieve_mission(report("Heir", "r-1")).await.unwrap_err()),
        ("gateway", through_gateway.achieve_mission(report("heir", "r-2")).await.unwrap_err()),
    ] {
        assert_eq!(e.code(), Code::FailedPrecondition, "{who}: {e:?}");
        assert!(e.message().starts_with("customer_id: no customer 'heir' is registered"), "{who}: {}", e.message());
        assert!(e.message().contains("RegisterCustomer"), "{who}: what to do next: {}", e.message());
        use tonic_types::StatusExt;
        let info = e.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(info.reason, "CUSTOMER_NOT_REGISTERED", "{who}");
        assert_eq!(info.metadata.get("customer_id").map(String::as_str), Some("heir"), "{who}");
    }

    // Whoever registers the id finds nothing waiting; reports count from then on.
    assert_eq!(register(&sys, "HEIR").await.unwrap(), "heir");
    let token = log_in(&sys, "heir").await.unwrap();
    let mine = MissionServiceClient::new(with_token(sys.gateway().channel(), &token))
        .list_missions(mission::ListMissionsRequest { customer_id: "heir".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(mine.missions.is_empty(), "nothing inherited: {:?}", mine.missions);
    let m = game.achieve_mission(report("heir", "r-3")).await.expect("registered now").into_inner();
    assert_eq!(m.mission.unwrap().customer_id, "heir");
}
