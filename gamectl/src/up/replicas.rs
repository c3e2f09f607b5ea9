//! How many processes of each role `up` runs (`--replicas`), and where: replica `r` of a
//! role listens on `base-port + offset + 10·(r−1)` (its metrics 200 above that) and is
//! named `<role>-<r>` (the first keeps the role's name). Replicas of a role share its
//! database and its durable consumers; the gateway, alone on the base port, balances
//! over them. SQLite is one writer's file, so more than one replica needs PostgreSQL.

use crate::cli::{Database, UpArgs};
use crate::services::{self, ServiceSpec};

/// A process `up` will start, and where.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Planned {
    pub(super) spec: &'static ServiceSpec,
    /// Its name in messages, log prefixes, the ready table and endpoints.json.
    pub(super) name: String,
    pub(super) port: u16,
}

/// Replicas of every role but the gateway: `--replicas` (1 to [`services::MAX_REPLICAS`], clap
/// checks), else 2 on PostgreSQL and 1 on SQLite or all in one.
///
/// # Errors
/// More than one on SQLite (one writer per file) or all in one (one process); the
/// message names the flags.
pub(super) fn count(args: &UpArgs) -> Result<u8, String> {
    let n = match args.replicas {
        Some(n) => n,
        None if args.all_in_one => 1,
        None => match args.database {
            Database::Sqlite => 1,
            Database::Postgres => 2,
        },
    };
    if n > 1 && args.database == Database::Sqlite {
        return Err(format!(
            "--replicas {n} needs --database postgres: a SQLite file has one writer, so replicas \
             sharing a role's data cannot run on it"
        ));
    }
    if n > 1 && args.all_in_one {
        return Err(format!(
            "--replicas {n} cannot be used with --all-in-one, which runs every role in one process \
             (and one gateway on the base port); leave out --all-in-one to run replicas"
        ));
    }
    Ok(n)
}

/// Every process to start: each role's replicas, each on its port, in table order.
///
/// # Errors
/// When a port would exceed 65535.
pub(super) fn plan(base_port: u16, replicas: u8) -> Result<Vec<Planned>, String> {
    let mut planned = Vec::new();
    for (spec, first) in services::port_table(base_port)? {
        let n = if services::is_replicated(spec) { replicas } else { 1 };
        for r in 1..=n {
            let name = services::replica_name(spec.name, r);
            let port = services::replica_port(first, r)
                .ok_or_else(|| format!("--base-port {base_port} leaves no port for {name}"))?;
            planned.push(Planned { spec, name, port });
        }
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn up_args(flags: &[&str]) -> UpArgs {
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            up: UpArgs,
        }
        Cmd::try_parse_from([&["up"], flags].concat()).expect("flags parse").up
    }

    #[test]
    fn postgres_runs_two_of_every_role_and_sqlite_one() {
        assert_eq!(count(&up_args(&[])), Ok(1));
        assert_eq!(count(&up_args(&["--database", "postgres"])), Ok(2));
        assert_eq!(count(&up_args(&["--database", "postgres", "--replicas", "3"])), Ok(3));
        assert_eq!(count(&up_args(&["--database", "postgres", "--replicas", "1"])), Ok(1));
        assert_eq!(count(&up_args(&["--database", "postgres", "--all-in-one"])), Ok(1));
    }

    #[test]
    fn replicas_on_sqlite_or_all_in_one_are_refused_naming_the_flags() {
        let e = count(&up_args(&["--replicas", "2"])).unwrap_err();
        assert!(e.contains("--replicas 2") && e.contains("--database postgres"), "{e}");
        let e = count(&up_args(&["--database", "postgres", "--all-in-one", "--replicas", "2"])).unwrap_err();
        assert!(e.contains("--replicas 2") && e.contains("--all-in-one"), "{e}");
    }

    #[test]
    fn no_replicas_or_more_than_ten_is_refused_by_the_flag_parser() {
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            _up: UpArgs,
        }
        for n in ["0", "11"] {
            let e = Cmd::try_parse_from(["up", "--database", "postgres", "--replicas", n]).err().expect(n);
            assert!(e.to_string().contains("--replicas"), "{e}");
        }
    }

    #[test]
    fn the_second_replica_of_each_role_listens_ten_ports_above_the_first_and_the_gateway_runs_once() {
        let planned: Vec<(String, u16)> = plan(56000, 2).unwrap().into_iter().map(|p| (p.name, p.port)).collect();
        let expected = [
            ("gateway", 56000),
            ("mission", 56001),
            ("mission-2", 56011),
            ("reward", 56002),
            ("reward-2", 56012),
            ("wallet", 56003),
            ("wallet-2", 56013),
            ("mypage", 56004),
            ("mypage-2", 56014),
            ("gift", 56005),
            ("gift-2", 56015),
            ("notification", 56006),
            ("notification-2", 56016),
            ("auth", 56007),
            ("auth-2", 56017),
            ("ops", 56008),
            ("ops-2", 56018),
        ];
        assert_eq!(planned, expected.map(|(n, p)| (n.to_owned(), p)));
        let ten = plan(50051, services::MAX_REPLICAS).unwrap();
        let top = ten.iter().map(|p| p.port).max().unwrap();
        assert!(top < services::nats_port(50051).unwrap(), "below the nats-server: {top}");
        assert!(plan(65520, 3).unwrap_err().contains("mission-3"), "a replica without a port is named");
    }

    #[test]
    fn every_replica_is_told_where_all_replicas_of_the_others_are() {
        let data = std::path::Path::new("/data");
        let secrets = crate::secrets::Paths::of(data);
        let ports = services::port_table(56000).unwrap();
        let ctx = services::EnvContext {
            data_dir: data,
            nats_url: "nats://127.0.0.1:56100",
            nats_credentials: None,
            stream_replicas: 1,
            secrets: &secrets,
            ports: &ports,
            databases: &[],
            replicas: 2,
        };
        let wallet2 = plan(56000, 2).unwrap().into_iter().find(|p| p.name == "wallet-2").unwrap();
        let env = services::child_env(wallet2.spec, wallet2.port, &ctx);
        let get = |var: &str| env.iter().rev().find(|(k, _)| *k == var).map(|(_, v)| v.as_str());
        assert_eq!(get("LISTEN_ADDR"), Some("127.0.0.1:56013"));
        assert_eq!(get("METRICS_ADDR"), Some("127.0.0.1:56213"));
        assert_eq!(get("GIFT_URL"), Some("http://127.0.0.1:56005,http://127.0.0.1:56015"));
        assert_eq!(get("AUTH_URL"), Some("http://127.0.0.1:56307,http://127.0.0.1:56317"), "auth's internal ports");
        assert_eq!(get("MISSION_URL"), Some("http://127.0.0.1:56001,http://127.0.0.1:56011"));
        assert_eq!(
            get("JWKS_URLS"),
            Some("http://127.0.0.1:56307/.well-known/jwks.json,http://127.0.0.1:56317/.well-known/jwks.json")
        );
        assert_eq!(
            get("REVOCATION_URLS"),
            Some("http://127.0.0.1:56307/revocations,http://127.0.0.1:56317/revocations")
        );
        assert_eq!(get("DATABASE_URL"), Some("sqlite:///data/wallet.db"), "the role's database, shared");
    }
}
