use clap::Parser as _;

use super::*;

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("gamectl").chain(args.iter().copied())).unwrap()
}

#[test]
fn the_customer_of_achieve_and_exchange_may_be_left_out() {
    let Command::Achieve { args, .. } = parse(&["achieve", "daily-login"]).command else { panic!() };
    assert_eq!(optional_customer(args, 1), (None, vec!["daily-login".to_owned()]));
    let Command::Achieve { args, .. } = parse(&["achieve", "bob", "daily-login"]).command else { panic!() };
    assert_eq!(optional_customer(args, 1), (Some("bob".into()), vec!["daily-login".to_owned()]));
    let Command::Exchange { args, .. } = parse(&["exchange", "r-1", "coffee"]).command else { panic!() };
    assert_eq!(optional_customer(args, 2).0, None);
    let Command::Exchange { args, .. } = parse(&["exchange", "bob", "r-1", "coffee"]).command else { panic!() };
    assert_eq!(optional_customer(args, 2), (Some("bob".into()), vec!["r-1".to_owned(), "coffee".to_owned()]));
    let too_many = ["gamectl", "achieve", "a", "b", "c"];
    assert!(Cli::try_parse_from(too_many).is_err());
    assert!(Cli::try_parse_from(["gamectl", "exchange", "r-1"]).is_err());
}

#[test]
fn nobody_is_made_admin_by_name() {
    assert!(Cli::try_parse_from(["gamectl", "up", "--admin", "ops"]).is_err());
}

#[test]
fn login_is_for_a_customer_or_a_service_account_not_both() {
    let Command::Login { customer_id, service_account, .. } = parse(&["login", "alice"]).command else { panic!() };
    assert_eq!((customer_id.as_deref(), service_account), (Some("alice"), None));
    let Command::Login { customer_id, service_account, secret, .. } =
        parse(&["login", "--service-account", "svc-gs", "--secret", "s3cret-s3cret"]).command
    else {
        panic!()
    };
    assert_eq!(
        (customer_id, service_account.as_deref(), secret.as_deref()),
        (None, Some("svc-gs"), Some("s3cret-s3cret"))
    );
    assert!(Cli::try_parse_from(["gamectl", "login"]).is_err());
    assert!(Cli::try_parse_from(["gamectl", "login", "alice", "--service-account", "svc-gs"]).is_err());
    assert!(Cli::try_parse_from(["gamectl", "login", "alice", "--secret", "x"]).is_err());
}

#[test]
fn roles_service_accounts_and_revocation_have_their_commands() {
    let Command::Role { command: RoleCommand::Grant { customer_id, role } } =
        parse(&["role", "grant", "bob", "admin"]).command
    else {
        panic!()
    };
    assert_eq!((customer_id.as_str(), role.as_str()), ("bob", "admin"));
    assert!(matches!(
        parse(&["role", "revoke", "bob", "admin"]).command,
        Command::Role { command: RoleCommand::Revoke { .. } }
    ));
    let Command::ServiceAccount { command: ServiceAccountCommand::Create { name, role } } =
        parse(&["service-account", "create", "match-server"]).command
    else {
        panic!()
    };
    assert_eq!((name.as_str(), role.as_str()), ("match-server", "game_server"));
    assert!(Cli::try_parse_from(["gamectl", "service-account", "create", "x", "--role", "admin"]).is_err());
    assert!(
        matches!(parse(&["revoke", "bob"]).command, Command::Revoke { customer_id, external: false } if customer_id == "bob")
    );
}

#[test]
fn the_command_line_is_well_formed_with_every_role_under_serve() {
    use clap::CommandFactory as _;
    Cli::command().debug_assert();
    let Command::Serve(serve) = parse(&["serve", "mission", "--listen", "127.0.0.1:7001"]).command else { panic!() };
    let Some(crate::serve::Role::Mission(m)) = serve.role else { panic!("mission") };
    assert_eq!(m.server.listen.to_string(), "127.0.0.1:7001");
    for role in crate::serve::roles() {
        let Command::Serve(serve) = parse(&["serve", role]).command else { panic!() };
        assert_eq!(serve.role.map(|r| r.name()), Some(role));
    }
    let Command::Serve(serve) = parse(&["serve", "--roles", "mission,reward"]).command else { panic!() };
    assert_eq!(serve.roles, ["mission", "reward"]);
    assert!(Cli::try_parse_from(["gamectl", "serve", "--roles", "all", "mission"]).is_err());
    assert!(Cli::try_parse_from(["gamectl", "serve", "nope"]).is_err());
}

#[test]
fn global_flags_go_anywhere() {
    let cli = parse(&["wallet", "--token-file", "/tmp/t", "--direct"]);
    assert_eq!(cli.global.token_file.as_deref(), Some(std::path::Path::new("/tmp/t")));
    assert!(cli.global.direct);
    assert!(matches!(cli.command, Command::Wallet { customer_id: None, .. }));
}

#[test]
fn lists_take_a_page_size_a_token_or_all() {
    let Command::Missions { customer_id, paging } = parse(&["missions", "ann", "--page-size", "10", "--all"]).command
    else {
        panic!()
    };
    assert_eq!((customer_id.as_deref(), paging.page_size, paging.all), (Some("ann"), Some(10), true));
    let Command::Gifts { paging, .. } = parse(&["gifts", "--page-token", "abc"]).command else { panic!() };
    assert_eq!(paging.page_token.as_deref(), Some("abc"));
    assert!(Cli::try_parse_from(["gamectl", "rewards", "--all", "--page-token", "x"]).is_err());
}

#[test]
fn rebuild_names_a_view_and_goes_through_the_gateway_unless_told_bus() {
    let Command::Rebuild(r) = parse(&["rebuild", "mypage"]).command else { panic!() };
    assert_eq!((r.view.as_str(), r.bus, r.allow_partial), ("mypage", false, false));
    let Command::Rebuild(r) = parse(&["rebuild", "mypage", "--bus", "--nats-url", "nats://n:4222"]).command else {
        panic!()
    };
    assert_eq!((r.bus, r.nats.nats_url.as_deref()), (true, Some("nats://n:4222")));
    assert!(Cli::try_parse_from(["gamectl", "rebuild", "wallet"]).is_err(), "only my page is a view");
    assert!(Cli::try_parse_from(["gamectl", "rebuild", "mypage", "--bucket", "x"]).is_err(), "--bucket needs --bus");
}

#[test]
fn dlq_takes_an_id_or_all_and_discard_needs_a_reason() {
    let Command::Dlq(DlqArgs { command: DlqCommand::Redrive { id, all, consumer }, .. }) =
        parse(&["dlq", "redrive", "--all", "--consumer", "wallet-issue"]).command
    else {
        panic!()
    };
    assert_eq!((id, all, consumer.as_deref()), (None, true, Some("wallet-issue")));
    assert!(Cli::try_parse_from(["gamectl", "dlq", "redrive"]).is_err(), "an id or --all");
    assert!(Cli::try_parse_from(["gamectl", "dlq", "redrive", "3", "--all"]).is_err());
    assert!(Cli::try_parse_from(["gamectl", "dlq", "discard", "3"]).is_err(), "a reason");
    let Command::Dlq(d) = parse(&["dlq", "list", "--page-size", "5"]).command else { panic!() };
    assert!(!d.bus, "through the gateway by default");
    let Command::Dlq(d) = parse(&["dlq", "show", "7", "--bus", "--nats-url", "nats://n:4222"]).command else {
        panic!()
    };
    assert_eq!((d.bus, d.nats.nats_url.as_deref()), (true, Some("nats://n:4222")));
    assert!(matches!(
        parse(&["dlq", "show", "7"]).command,
        Command::Dlq(DlqArgs { command: DlqCommand::Show { id: 7 }, .. })
    ));
}
