//! The services of the system: one table, so that a new service is one more line.

/// One service binary and how `up` runs it.
#[derive(Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Binary name, key in endpoints.json, prefix of its log lines.
    pub name: &'static str,
    /// The name it reports readiness under in `grpc.health.v1.Health` ("" = the whole
    /// server, for processes without an API of their own).
    pub health: &'static str,
    /// Its port is `base-port + port_offset`.
    pub port_offset: u16,
    /// `up` refuses to start without it; the others run when their binary exists.
    pub required: bool,
}

pub const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        name: "gateway",
        health: "",
        port_offset: 0,
        required: false,
    },
    ServiceSpec {
        name: "mission",
        health: "game.mission.v1.MissionService",
        port_offset: 1,
        required: true,
    },
    ServiceSpec {
        name: "reward",
        health: "game.reward.v1.RewardService",
        port_offset: 2,
        required: true,
    },
    ServiceSpec {
        name: "wallet",
        health: "game.wallet.v1.WalletService",
        port_offset: 3,
        required: true,
    },
    ServiceSpec {
        name: "mypage",
        health: "game.mypage.v1.MyPageService",
        port_offset: 4,
        required: true,
    },
    ServiceSpec {
        name: "gift",
        health: "game.gift.v1.GiftService",
        port_offset: 5,
        required: false,
    },
    ServiceSpec {
        name: "notification",
        health: "game.notification.v1.NotificationService",
        port_offset: 6,
        required: false,
    },
    ServiceSpec {
        name: "auth",
        health: "game.auth.v1.AuthService",
        port_offset: 7,
        required: false,
    },
];

/// The nats-server started by `up` listens on `base-port + NATS_PORT_OFFSET` by default.
pub const NATS_PORT_OFFSET: u16 = 100;

/// The port of every service for a base port, in table order.
///
/// # Errors
/// When a port would exceed 65535.
pub fn port_table(base: u16) -> Result<Vec<(&'static ServiceSpec, u16)>, String> {
    SERVICES
        .iter()
        .map(|s| {
            base.checked_add(s.port_offset)
                .map(|p| (s, p))
                .ok_or_else(|| format!("--base-port {base} leaves no port for {}", s.name))
        })
        .collect()
}

/// The default port of the nats-server started by `up`.
///
/// # Errors
/// When it would exceed 65535.
pub fn nats_port(base: u16) -> Result<u16, String> {
    base.checked_add(NATS_PORT_OFFSET)
        .ok_or_else(|| format!("--base-port {base} leaves no port for nats-server"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_default_base_port_gives_the_documented_ports() {
        let table: Vec<(&str, u16)> = port_table(50051)
            .unwrap()
            .into_iter()
            .map(|(s, p)| (s.name, p))
            .collect();
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
    fn names_and_ports_are_unique_and_the_core_four_are_required() {
        let names: HashSet<_> = SERVICES.iter().map(|s| s.name).collect();
        let offsets: HashSet<_> = SERVICES.iter().map(|s| s.port_offset).collect();
        assert_eq!(names.len(), SERVICES.len());
        assert_eq!(offsets.len(), SERVICES.len());
        assert!(!offsets.contains(&NATS_PORT_OFFSET));
        let required: Vec<_> = SERVICES
            .iter()
            .filter(|s| s.required)
            .map(|s| s.name)
            .collect();
        assert_eq!(required, ["mission", "reward", "wallet", "mypage"]);
    }
}
