use super::*;
use crate::roles::{mission, mypage, notification, reward, wallet};

/// Whether `subject` is covered by one of the `allowed` patterns (`*` one token,
/// `>` the rest), as nats-server decides.
fn allows(allowed: &[String], subject: &str) -> bool {
    allowed.iter().any(|pattern| streams::covers(pattern, subject))
}

fn can_publish(role: &Role, subject: &str) -> bool {
    allows(&permissions(role).publish, subject)
}

fn can_subscribe(role: &Role, subject: &str) -> bool {
    allows(&permissions(role).subscribe, subject)
}

#[test]
fn a_role_publishes_its_own_events_and_no_one_elses() {
    assert!(can_publish(&mission::ROLE, "game.mission.v1.achieved"));
    assert!(can_publish(&reward::ROLE, "game.reward.v1.allocated"));
    // The attack of issue 10: a forged allocation from anyone but reward.
    for role in [mission::ROLE, wallet::ROLE, notification::ROLE, mypage::ROLE, roles::gift::ROLE] {
        assert!(!can_publish(&role, "game.reward.v1.allocated"), "{} may not allocate", role.name);
    }
    assert!(!can_publish(&mypage::ROLE, "game.mypage.v1.anything"), "mypage publishes no events");
    assert!(!can_publish(&wallet::ROLE, "game.>"));
}

#[test]
fn a_role_manages_its_own_stream_and_only_looks_at_those_it_reads() {
    let m = mission::ROLE;
    assert!(can_publish(&m, "$JS.API.STREAM.CREATE.MISSION"));
    assert!(can_publish(&m, "$JS.API.STREAM.INFO.MISSION"));
    assert!(can_publish(&m, "$JS.API.STREAM.INFO.REWARD"), "it reads REWARD");
    assert!(!can_publish(&m, "$JS.API.STREAM.CREATE.REWARD"), "but does not create it");
    assert!(!can_publish(&m, "$JS.API.STREAM.UPDATE.MISSION"));
    assert!(!can_publish(&m, "$JS.API.STREAM.DELETE.MISSION"));
    assert!(!can_publish(&m, "$JS.API.STREAM.PURGE.REWARD"));
    assert!(!can_publish(&m, "$JS.API.STREAM.INFO.WALLET"), "it does not read WALLET");
    assert!(!can_publish(&m, "$JS.API.STREAM.MSG.GET.REWARD"), "no reading around its consumer");
    assert!(!can_publish(&m, "$JS.API.DIRECT.GET.REWARD"));
}

#[test]
fn a_role_binds_only_its_own_durables_with_their_exact_filter() {
    let m = mission::ROLE;
    assert!(can_publish(&m, "$JS.API.CONSUMER.CREATE.REWARD.mission-record-reward.game.reward.v1.allocated"));
    assert!(can_publish(&m, "$JS.API.CONSUMER.INFO.REWARD.mission-record-reward"));
    assert!(can_publish(&m, "$JS.API.CONSUMER.MSG.NEXT.REWARD.mission-record-reward"));
    assert!(can_publish(&m, "$JS.ACK.REWARD.mission-record-reward.1.2.3.4.5.6.7"));
    // another filter on its durable, an ephemeral consumer, another role's durable
    assert!(!can_publish(&m, "$JS.API.CONSUMER.CREATE.REWARD.mission-record-reward.game.reward.v1.>"));
    assert!(!can_publish(&m, "$JS.API.CONSUMER.CREATE.REWARD"));
    assert!(!can_publish(&m, "$JS.API.CONSUMER.DURABLE.CREATE.REWARD.mission-record-reward"));
    assert!(!can_publish(&m, "$JS.API.CONSUMER.MSG.NEXT.REWARD.wallet-issue"));
    assert!(!can_publish(&m, "$JS.ACK.REWARD.wallet-issue.1.2.3.4.5.6.7"));
    assert!(!can_publish(&m, "$JS.API.CONSUMER.DELETE.REWARD.wallet-issue"));
}

#[test]
fn a_role_replays_what_its_own_durables_read_and_nothing_else() {
    let p = mypage::ROLE;
    assert!(can_publish(&p, "$JS.API.CONSUMER.CREATE.MISSION.mypage-mission-replay.game.mission.v1.>"));
    assert!(can_publish(&p, "$JS.API.CONSUMER.MSG.NEXT.MISSION.mypage-mission-replay"));
    assert!(can_publish(&p, "$JS.API.CONSUMER.DELETE.MISSION.mypage-mission-replay"));
    assert!(can_publish(&p, "$JS.ACK.MISSION.mypage-mission-replay.1.2.3.4.5.6.7"));
    // not its live durable, not another stream under its name, not another role's replay
    assert!(!can_publish(&p, "$JS.API.CONSUMER.DELETE.MISSION.mypage-mission"));
    assert!(!can_publish(&p, "$JS.API.CONSUMER.CREATE.NOTIFICATION.mypage-mission-replay.game.notification.v1.>"));
    assert!(!can_publish(&p, "$JS.API.CONSUMER.CREATE.MISSION.reward-allocate-replay.game.mission.v1.achieved"));
    let m = mission::ROLE;
    assert!(!can_publish(&m, "$JS.API.CONSUMER.CREATE.MISSION.mypage-mission-replay.game.mission.v1.>"));
}

#[test]
fn a_role_dead_letters_under_its_own_durables_only() {
    assert!(can_publish(&reward::ROLE, "game.deadletter.reward-allocate"));
    assert!(!can_publish(&reward::ROLE, "game.deadletter.wallet-issue"));
    assert!(can_publish(&reward::ROLE, "$JS.API.STREAM.CREATE.DEADLETTER"));
    assert!(!can_publish(&roles::gift::ROLE, "$JS.API.STREAM.CREATE.DEADLETTER"), "gift consumes nothing");
    // Every role, every durable: a dead letter is published by its consumer's role alone,
    // and no role but ops files one as discarded (a dead letter's subject is what names
    // its consumer, `crate::dlq`).
    for role in roles::ALL {
        for c in roles::ALL.iter().flat_map(|r| r.consumers) {
            let own = role.consumers.contains(c);
            assert_eq!(
                can_publish(&role, &streams::dead_letter_subject(c.durable)),
                own,
                "{} {}",
                role.name,
                c.durable
            );
        }
        let ops = role.name == roles::ops::ROLE.name;
        assert_eq!(can_publish(&role, "game.deadletter._discarded.wallet-issue"), ops, "{}", role.name);
        assert!(!can_publish(&role, "game.deadletter.someone-else"), "{}", role.name);
    }
}

#[test]
fn ops_reads_removes_and_sends_back_dead_letters_and_nothing_else() {
    let ops = &roles::ops::ROLE;
    for s in [
        "$JS.API.STREAM.MSG.GET.DEADLETTER",
        "$JS.API.STREAM.MSG.DELETE.DEADLETTER",
        "game.gift.v1.issued",
        "game.reward.v1.allocated",
        "game.deadletter._discarded.notification-gift-issued",
        // the event a dead letter names, read back from its own stream
        "$JS.API.STREAM.MSG.GET.GIFT",
    ] {
        assert!(can_publish(ops, s), "{s}");
    }
    for s in [
        "$JS.API.STREAM.CREATE.DEADLETTER",
        "$JS.API.STREAM.DELETE.DEADLETTER",
        "$JS.API.STREAM.PURGE.DEADLETTER",
        "$JS.API.STREAM.MSG.DELETE.GIFT",
        "$JS.API.STREAM.MSG.GET.NOTIFICATION",
        "game.deadletter.wallet-issue",
        "game.notification.v1.sent",
        "$KV.mypage.x",
    ] {
        assert!(!can_publish(ops, s), "{s}");
    }
    assert!(!can_publish(&reward::ROLE, "$JS.API.STREAM.MSG.DELETE.DEADLETTER"));
    assert!(can_subscribe(ops, "_INBOX.ops.x") && !can_subscribe(ops, "_INBOX.reward.x"));
}

#[test]
fn a_role_subscribes_to_its_own_inbox_only() {
    for role in roles::ALL {
        assert_eq!(permissions(&role).subscribe, [format!("_INBOX.{}.>", role.name)]);
    }
    assert!(can_subscribe(&wallet::ROLE, "_INBOX.wallet.abc.1"));
    assert!(!can_subscribe(&wallet::ROLE, "_INBOX.mission.abc.1"));
    assert!(!can_subscribe(&wallet::ROLE, "game.reward.v1.allocated"), "events come through consumers only");
    assert!(!can_subscribe(&wallet::ROLE, "_INBOX.>"));
}

#[test]
fn my_page_owns_its_bucket_and_reads_every_stream_it_projects() {
    let p = mypage::ROLE;
    assert!(can_publish(&p, "$KV.mypage.c-1"));
    assert!(can_publish(&p, "$JS.API.STREAM.CREATE.KV_mypage"));
    assert!(can_publish(&p, "$JS.API.DIRECT.GET.KV_mypage.$KV.mypage.c-1"));
    assert!(can_publish(&p, "$JS.API.CONSUMER.CREATE.KV_mypage"));
    assert!(can_publish(&p, "$JS.API.STREAM.PURGE.KV_mypage"), "old generations of its view");
    assert!(!can_publish(&p, "$JS.API.STREAM.PURGE.MISSION"));
    assert!(can_publish(&p, "$JS.API.CONSUMER.CREATE.MISSION.mypage-mission.game.mission.v1.>"));
    assert!(!can_publish(&mission::ROLE, "$KV.mypage.c-1"), "only my page writes pages");
    assert!(!can_publish(&p, "$KV.other.c-1"));
}

#[test]
fn the_operator_is_unrestricted_and_every_role_is_a_user() {
    let users: Vec<User> = user_names().map(|name| User { name, nkey: format!("U-{name}") }).collect();
    let conf = accounts(&users);
    let listed = conf[ACCOUNT]["users"].as_array().unwrap();
    assert_eq!(listed.len(), 1 + roles::ALL.len());
    assert_eq!(listed[0], json!({ "nkey": "U-operator" }));
    assert_eq!(listed[1]["nkey"], "U-mission");
    assert_eq!(listed[1]["permissions"]["subscribe"]["allow"], json!(["_INBOX.mission.>"]));
    assert_eq!(conf[ACCOUNT]["jetstream"], "enabled");
    assert!(conf.get("no_auth_user").is_none());
}

#[test]
fn the_helm_users_read_their_public_keys_from_the_environment() {
    let conf = helm_accounts();
    assert_eq!(conf[ACCOUNT]["users"][2]["nkey"], "<< $NATS_NKEY_REWARD >>");
}

#[test]
fn the_prod_overlay_grants_what_the_role_table_says() {
    let prod = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/overlays/prod");
    let read = |file: &str| std::fs::read_to_string(prod.join(file)).unwrap();
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let generated = serde_json::to_string_pretty(&helm_accounts()).unwrap();
    assert!(
        squeeze(&read("nats-values.yaml")).contains(&format!("accounts:{}", squeeze(&generated))),
        "k8s/overlays/prod/nats-values.yaml: make config.merge.accounts\n{generated}\n\
         and re-render nats.rendered.yaml"
    );
    // As the chart renders it: "<< $VAR >>" becomes a bare $VAR (a variable of nats.conf).
    let mut rendered = generated.clone();
    for user in user_names() {
        let var = helm_env_var(user);
        rendered = rendered.replace(&format!("\"<< ${var} >>\""), &format!("${var}"));
    }
    assert!(
        squeeze(&read("nats.rendered.yaml")).contains(&format!("\"accounts\":{}", squeeze(&rendered))),
        "k8s/overlays/prod/nats.rendered.yaml: nats.conf must hold \"accounts\": {rendered}"
    );
}

#[test]
fn credentials_are_private_files_kept_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth");
    let creds = Credentials::ensure(&auth).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&auth), 0o700);
    for name in user_names() {
        assert_eq!(mode(&creds.seed_file(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&creds.server_config_file()), 0o600);
    let seed = std::fs::read_to_string(creds.seed_file("wallet")).unwrap();
    let public = user_key(seed.trim()).unwrap().public_key();
    let conf = std::fs::read_to_string(creds.server_config_file()).unwrap();
    assert!(conf.contains(&public), "the server knows wallet's public key");
    assert!(!conf.contains(seed.trim()), "and never a seed");

    // A second run keeps the seeds and tightens a loosened file.
    std::fs::set_permissions(creds.seed_file("wallet"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = Credentials::ensure(&auth).unwrap();
    assert_eq!(std::fs::read_to_string(again.seed_file("wallet")).unwrap(), seed);
    assert_eq!(mode(&again.seed_file("wallet")), 0o600);

    std::fs::write(again.seed_file("gift"), "not a seed").unwrap();
    let err = Credentials::ensure(&auth).unwrap_err().to_string();
    assert!(err.contains("gift.nk") && err.contains("delete it"), "{err}");
}
