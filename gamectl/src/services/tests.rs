use std::collections::HashSet;

use super::*;

#[test]
fn the_default_base_port_gives_the_documented_ports() {
    let table: Vec<(&str, u16)> = port_table(50051).unwrap().into_iter().map(|(s, p)| (s.name, p)).collect();
    assert_eq!(
        table,
        [
            ("gateway", 50051),
            ("mission", 50052),
            ("reward", 50053),
            ("wallet", 50054),
            ("mypage", 50055),
            ("gift", 50056),
            ("notification", 50057),
            ("auth", 50058),
            ("ops", 50059),
        ]
    );
    assert_eq!(nats_port(50051).unwrap(), 50151);
}

#[test]
fn a_base_port_near_the_top_is_refused() {
    assert!(port_table(65534).unwrap_err().contains("for reward"));
    assert!(nats_port(65500).is_err());
}

#[test]
fn names_and_ports_are_unique_and_every_one_is_a_role_of_serve() {
    let names: HashSet<_> = SERVICES.iter().map(|s| s.name).collect();
    let offsets: HashSet<_> = SERVICES.iter().map(|s| s.port_offset).collect();
    assert_eq!(names.len(), SERVICES.len());
    assert_eq!(offsets.len(), SERVICES.len());
    assert!(!offsets.contains(&NATS_PORT_OFFSET));
    let mut roles: Vec<_> = SERVICES.iter().map(|s| s.name).collect();
    let mut served = crate::serve::roles();
    roles.sort_unstable();
    served.sort_unstable();
    assert_eq!(roles, served);
}

#[test]
fn every_api_of_the_contracts_is_a_service_under_its_name_and_variable() {
    for api in contracts::services::APIS {
        let role = contracts::services::role_of(api.name).expect(api.name).name;
        let spec = SERVICES.iter().find(|s| s.name == role).expect(role);
        assert_eq!((spec.health, spec.url_env), (api.name, Some(api.url_env)), "{role}");
    }
    assert_eq!(SERVICES.len(), contracts::services::APIS.len() + 1, "the APIs and the gateway");
}

#[test]
fn the_real_health_names_are_checked() {
    let health = |n: &str| SERVICES.iter().find(|s| s.name == n).unwrap().health;
    assert_eq!(health("gift"), "game.gift.v1.GiftService");
    assert_eq!(health("notification"), "game.notification.v1.NotificationService");
    assert_eq!(health("auth"), "game.auth.v1.AuthService");
    assert_eq!(health("gateway"), "game.gateway.v1.Gateway");
}

#[test]
fn auth_starts_first_gift_before_the_wallet_and_the_gateway_last() {
    let stage = |n: &str| SERVICES.iter().find(|s| s.name == n).unwrap().stage;
    for s in SERVICES.iter().filter(|s| s.name != "auth") {
        assert!(s.stage > stage("auth"), "{}", s.name);
        assert!(s.name == "gateway" || s.stage < stage("gateway"), "{}", s.name);
    }
    assert!(stage("gift") < stage("wallet"), "the wallet calls gift");
}

fn env_of(name: &str) -> Vec<(&'static str, String)> {
    let ports = port_table(56100).unwrap();
    let (spec, port) = ports.iter().find(|(s, _)| s.name == name).unwrap();
    let secrets = secrets::Paths::of(Path::new("/data"));
    let creds = Credentials { dir: nats_auth_dir(Path::new("/data")) };
    let ctx = EnvContext {
        data_dir: Path::new("/data"),
        nats_url: "nats://127.0.0.1:56200",
        nats_credentials: Some(&creds),
        stream_replicas: 1,
        secrets: &secrets,
        ports: &ports,
        databases: &[],
        replicas: 1,
    };
    child_env(spec, *port, &ctx)
}

fn get<'a>(env: &'a [(&'static str, String)], var: &str) -> Option<&'a str> {
    env.iter().rev().find(|(k, _)| *k == var).map(|(_, v)| v.as_str())
}

#[test]
fn every_child_gets_its_own_listen_address_database_and_nats() {
    let env = env_of("wallet");
    assert_eq!(get(&env, "LISTEN_ADDR"), Some("127.0.0.1:56103"));
    assert_eq!(get(&env, "DATABASE_URL"), Some("sqlite:///data/wallet.db"));
    assert_eq!(get(&env, "NATS_URL"), Some("nats://127.0.0.1:56200"));
    assert_eq!(get(&env, "MAILBOX_DIR"), None);
}

#[test]
fn every_service_on_the_bus_gets_its_own_credentials_and_the_others_none() {
    for s in SERVICES.iter() {
        let seed = get(&env_of(s.name), "NATS_NKEY_SEED_FILE").map(str::to_owned);
        match s.name {
            "auth" | "gateway" => assert_eq!(seed, None, "{} does not use NATS", s.name),
            name => assert_eq!(seed, Some(format!("/data/nats-auth/{name}.nk"))),
        }
    }
}

#[test]
fn every_child_verifies_tokens_with_the_keys_the_auth_service_publishes() {
    for s in SERVICES.iter() {
        let env = env_of(s.name);
        // From auth's internal port (its own plus 300), as in k8s.
        assert_eq!(get(&env, "JWKS_URLS"), Some("http://127.0.0.1:56407/.well-known/jwks.json"), "{}", s.name);
        assert_eq!(get(&env, "REVOCATION_URLS"), Some("http://127.0.0.1:56407/revocations"), "{}", s.name);
        assert_eq!(get(&env, "REVOCATION_KEY_FILE"), Some("/data/secrets/revocation.key"), "{}", s.name);
        // Only the auth service's keys: no key ring of gamectl's own any more.
        assert_eq!(get(&env, "JWKS_FILES"), None, "{}", s.name);
    }
}

#[test]
fn every_child_gets_the_address_of_every_service() {
    for s in SERVICES.iter() {
        let env = env_of(s.name);
        let urls: Vec<(&str, &str)> = env
            .iter()
            .filter(|(k, _)| k.ends_with("_URL") && !["DATABASE_URL", "NATS_URL", "CUSTOMERS_URL"].contains(k))
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        assert_eq!(
            urls,
            [
                ("MISSION_URL", "http://127.0.0.1:56101"),
                ("REWARD_URL", "http://127.0.0.1:56102"),
                ("WALLET_URL", "http://127.0.0.1:56103"),
                ("MYPAGE_URL", "http://127.0.0.1:56104"),
                ("GIFT_URL", "http://127.0.0.1:56105"),
                ("NOTIFICATION_URL", "http://127.0.0.1:56106"),
                // The wallet's service token from auth's internal port.
                ("AUTH_URL", if s.name == "wallet" { "http://127.0.0.1:56407" } else { "http://127.0.0.1:56107" }),
                ("OPS_URL", "http://127.0.0.1:56108"),
            ],
            "{}",
            s.name
        );
    }
}

#[test]
fn the_mission_service_asks_the_auth_service_who_is_registered() {
    assert_eq!(get(&env_of("mission"), "CUSTOMERS_URL"), Some("http://127.0.0.1:56407/customers"));
    assert_eq!(get(&env_of("reward"), "CUSTOMERS_URL"), None);
}

#[test]
fn auth_serves_our_services_on_its_internal_port_and_the_wallet_gets_its_token_there() {
    assert_eq!(get(&env_of("auth"), "INTERNAL_ADDR"), Some("127.0.0.1:56407"));
    assert_eq!(get(&env_of("wallet"), "AUTH_URL"), Some("http://127.0.0.1:56407"));
    // The gateway passes the customers' calls on to the public port.
    assert_eq!(get(&env_of("gateway"), "AUTH_URL"), Some("http://127.0.0.1:56107"));
    assert_eq!(get(&env_of("mission"), "INTERNAL_ADDR"), None);
}

#[test]
fn the_gateway_listens_on_the_base_port_and_routes_to_every_service() {
    let env = env_of("gateway");
    assert_eq!(get(&env, "LISTEN_ADDR"), Some("127.0.0.1:56100"));
    for var in
        ["MISSION_URL", "REWARD_URL", "WALLET_URL", "MYPAGE_URL", "GIFT_URL", "NOTIFICATION_URL", "AUTH_URL", "OPS_URL"]
    {
        assert!(get(&env, var).is_some(), "{var}");
    }
}

#[test]
fn auth_keeps_its_keys_and_database_in_the_data_dir_and_gets_the_first_admin_and_service_accounts() {
    let env = env_of("auth");
    assert_eq!(get(&env, "AUTH_KEYS_DIR"), Some("/data/keys"));
    assert_eq!(get(&env, "DATABASE_URL"), Some("sqlite:///data/auth.db"));
    assert_eq!(get(&env, "ADMIN_ID"), Some("admin"));
    assert_eq!(get(&env, "ADMIN_PASSWORD_FILE"), Some("/data/admin.password"));
    assert_eq!(get(&env, "ADMIN_STATUS_FILE"), Some("/data/admin.status"));
    assert_eq!(get(&env, "SERVICE_ACCOUNTS_FILE"), Some("/data/secrets/service-accounts.json"));
    assert_eq!(get(&env, "TRUSTED_PROXIES"), None, "the gateway is trusted by its token, not by 127.0.0.1");
    assert_eq!(get(&env, "ADMIN_CUSTOMERS"), None, "nobody is admin by name");
    assert_eq!(get(&env, "LISTEN_ADDR"), Some("127.0.0.1:56107"));
    for other in ["gift", "wallet", "gateway"] {
        assert_eq!(get(&env_of(other), "AUTH_KEYS_DIR"), None);
        assert_eq!(get(&env_of(other), "ADMIN_PASSWORD_FILE"), None);
    }
}

#[test]
fn the_wallet_and_the_gateway_alone_get_their_service_accounts() {
    let env = env_of("wallet");
    assert_eq!(get(&env, "SERVICE_CLIENT_ID"), Some("svc-wallet"));
    assert_eq!(get(&env, "SERVICE_CLIENT_SECRET_FILE"), Some("/data/secrets/wallet.secret"));
    assert_eq!(get(&env, "AUTH_URL"), Some("http://127.0.0.1:56407"), "auth's internal port");
    let gateway = env_of("gateway");
    assert_eq!(get(&gateway, "SERVICE_CLIENT_ID"), Some("svc-gateway"));
    assert_eq!(get(&gateway, "SERVICE_CLIENT_SECRET_FILE"), Some("/data/secrets/gateway.secret"));
    for other in ["gift", "mission", "auth"] {
        assert_eq!(get(&env_of(other), "SERVICE_CLIENT_SECRET_FILE"), None, "{other}");
    }
}

#[test]
fn notification_writes_its_mail_into_the_data_dir() {
    let env = env_of("notification");
    assert_eq!(get(&env, "MAILBOX_DIR"), Some("/data/mailbox"));
    assert_eq!(get(&env, "LISTEN_ADDR"), Some("127.0.0.1:56106"));
    assert_eq!(mailbox_dir(Path::new("/data")), Path::new("/data/mailbox"));
}
