#[test]
fn a_cluster_of_three_gets_client_ports_in_a_row_routes_ten_above_and_routes_to_the_others() {
    let one = Node::table(4222, 1).unwrap();
    assert_eq!(one, vec![Node { name: "nats", port: 4222, route_port: None }]);
    assert!(!one[0].args(Path::new("/s"), &one).iter().any(|a| a == "--cluster"));
    let three = Node::table(50151, 3).unwrap();
    let ports: Vec<_> = three.iter().map(|n| (n.name, n.port, n.route_port)).collect();
    assert_eq!(
        ports,
        vec![("nats-n1", 50151, Some(50161)), ("nats-n2", 50152, Some(50162)), ("nats-n3", 50153, Some(50163))]
    );
    let args = three[1].args(Path::new("/d/nats/n2"), &three).join(" ");
    assert_eq!(
        args,
        "-a 127.0.0.1 -p 50152 -js -sd /d/nats/n2 -n n2 --cluster_name game --cluster nats://127.0.0.1:50162 \
         --routes nats://127.0.0.1:50161,nats://127.0.0.1:50163"
    );
    assert!(Node::table(65530, 3).is_err(), "no room for the route ports");
}

use super::*;

#[test]
fn every_role_is_started_on_its_port() {
    let planned = replicas::plan(56000, 1).unwrap();
    let names: Vec<(&str, u16)> = planned.iter().map(|p| (p.spec.name, p.port)).collect();
    assert_eq!(
        names,
        [
            ("gateway", 56000),
            ("mission", 56001),
            ("reward", 56002),
            ("wallet", 56003),
            ("mypage", 56004),
            ("gift", 56005),
            ("notification", 56006),
            ("auth", 56007),
            ("ops", 56008),
        ]
    );
}

#[test]
fn each_role_runs_this_executable_with_serve_and_its_name() {
    let wallet2 = replicas::plan(56000, 2).unwrap().into_iter().find(|p| p.name == "wallet-2").unwrap();
    let child = role_child(Path::new("/bin/gamectl"), &wallet2, vec![("LISTEN_ADDR", "127.0.0.1:1".into())]);
    assert_eq!(child.program, Path::new("/bin/gamectl"));
    assert_eq!(child.args, ["serve", "wallet"]);
    assert_eq!(child.name, "wallet-2");
    assert_eq!(child.env, [("LISTEN_ADDR".to_owned(), "127.0.0.1:1".to_owned())]);
}

#[test]
fn all_in_one_runs_every_role_in_one_child_each_with_its_prefixed_settings() {
    let roles = vec![
        ("auth", vec![("LISTEN_ADDR", "127.0.0.1:7".to_owned())]),
        ("mypage", vec![("LISTEN_ADDR", "127.0.0.1:4".to_owned()), ("NATS_URL", "nats://n".to_owned())]),
    ];
    let child = all_in_one_child(Path::new("/bin/gamectl"), &roles);
    assert_eq!(child.args, ["serve", "--roles", "auth,mypage"]);
    let env: Vec<(&str, &str)> = child.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        env,
        [
            ("AUTH__LISTEN_ADDR", "127.0.0.1:7"),
            ("MYPAGE__LISTEN_ADDR", "127.0.0.1:4"),
            ("MYPAGE__NATS_URL", "nats://n")
        ]
    );
}

#[test]
fn the_all_in_one_environment_gives_each_role_what_its_own_child_would_get() {
    use crate::serve::Role;
    let data = Path::new("/data");
    let secrets = crate::secrets::Paths::of(data);
    let ports = services::port_table(56500).unwrap();
    let ctx = services::EnvContext {
        data_dir: data,
        nats_url: "nats://127.0.0.1:56600",
        nats_credentials: None,
        stream_replicas: 1,
        secrets: &secrets,
        ports: &ports,
        databases: &[],
        replicas: 1,
    };
    let roles: Vec<_> = replicas::plan(56500, 1)
        .unwrap()
        .iter()
        .map(|p| (p.spec.name, services::child_env(p.spec, p.port, &ctx)))
        .collect();
    let child = all_in_one_child(Path::new("/bin/gamectl"), &roles);
    let env = |k: &str| child.env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Role::Wallet(w) = Role::from_env("wallet", &env).unwrap() else { panic!("wallet") };
    assert_eq!(w.server.listen.to_string(), "127.0.0.1:56503");
    assert_eq!(w.database_url, "sqlite:///data/wallet.db");
    let Role::Auth(a) = Role::from_env("auth", &env).unwrap() else { panic!("auth") };
    assert_eq!(a.server.listen.to_string(), "127.0.0.1:56507");
    assert_eq!(a.keys_dir, Path::new("/data/keys"));
    let Role::Notification(n) = Role::from_env("notification", &env).unwrap() else { panic!("notification") };
    assert_eq!(n.database_url, "sqlite:///data/notification.db");
}

fn order(planned: &[Planned]) -> Vec<Vec<&'static str>> {
    stages(planned)
        .into_iter()
        .map(|st| planned.iter().filter(|p| p.spec.stage == st).map(|p| p.spec.name).collect())
        .collect()
}

#[test]
fn auth_starts_first_then_gift_before_the_wallet_and_the_gateway_last() {
    let planned = replicas::plan(56000, 1).unwrap();
    assert_eq!(
        order(&planned),
        [
            vec!["auth"],
            vec!["mission", "reward", "mypage", "gift", "notification", "ops"],
            vec!["wallet"],
            vec!["gateway"]
        ]
    );
}

#[test]
fn the_ready_table_shows_the_gateway_first() {
    let planned = replicas::plan(56300, 1).unwrap();
    let mut table = Endpoints {
        nats: "nats://127.0.0.1:56400".into(),
        gateway: None,
        services: Default::default(),
        metrics: Default::default(),
    };
    for p in &planned {
        table.services.insert(p.name.clone(), services::url(p.port));
    }
    table.gateway = table.services.get("gateway").cloned();
    let rows = ready_rows(&table, &planned, Some(Path::new("/d/mailbox")));
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        ["gateway", "nats", "auth", "mission", "reward", "mypage", "gift", "notification", "ops", "wallet", "mailbox"]
    );
    assert_eq!(rows[0][1], "http://127.0.0.1:56300");
    assert_eq!(rows[2][1], "http://127.0.0.1:56307");
}

#[test]
fn the_ready_table_shows_every_replica_after_the_first_of_its_role() {
    let planned = replicas::plan(56300, 2).unwrap();
    let mut table = Endpoints {
        nats: "nats://127.0.0.1:56400".into(),
        gateway: Some("http://127.0.0.1:56300".into()),
        services: Default::default(),
        metrics: Default::default(),
    };
    for p in &planned {
        table.services.insert(p.name.clone(), services::url(p.port));
    }
    let rows = ready_rows(&table, &planned, None);
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "gateway",
            "nats",
            "auth",
            "auth-2",
            "mission",
            "mission-2",
            "reward",
            "reward-2",
            "mypage",
            "mypage-2",
            "gift",
            "gift-2",
            "notification",
            "notification-2",
            "ops",
            "ops-2",
            "wallet",
            "wallet-2"
        ]
    );
    assert_eq!(rows[3][1], "http://127.0.0.1:56317");
}

#[test]
fn restarts_back_off_and_forgive_a_long_run() {
    let mut b = Backoff::new();
    let quick = Duration::from_millis(10);
    let delays: Vec<u64> = (0..6).map(|_| b.delay(quick).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
    assert_eq!(b.delay(Duration::from_secs(30)).as_secs(), 1);
    assert_eq!(b.delay(quick).as_secs(), 2);
}

#[test]
fn an_exit_is_described_by_code_or_signal() {
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(describe(Ok(ExitStatus::from_raw(1 << 8))), "status 1");
    assert_eq!(describe(Ok(ExitStatus::from_raw(9))), "signal 9");
}
