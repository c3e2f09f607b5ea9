//! The nats-servers `up` starts: one, or the nodes of a loopback cluster (their ports,
//! server names and flags), and the executable they run.

use std::path::{Path, PathBuf};

use nats_adapter::server_version;

/// The nats-server to start (`NATS_SERVER_BIN`, else `nats-server` on the PATH), said on
/// stdout with its version (`nats-server: <path> (version 2.15.1)`); refused, before
/// anything starts, when older than the supported minimum (`config/nats-version`: the
/// error names its version, the minimum and the install line of the pinned release).
pub(super) fn server() -> Result<PathBuf, String> {
    let found = server_version::check(&server_version::binary()).map_err(|e| e.to_string())?;
    super::say(format!("nats-server: {} (version {})", found.path.display(), found.version));
    Ok(found.path)
}

/// Child names of a cluster's nodes (and their server names without the prefix).
const NODE_NAMES: [&str; 5] = ["nats-n1", "nats-n2", "nats-n3", "nats-n4", "nats-n5"];

/// One nats-server started by `up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    /// `nats` alone; `nats-n1`... in a cluster (server name `n1`...).
    pub(super) name: &'static str,
    /// Where clients connect.
    pub(super) port: u16,
    /// Where the other nodes connect (cluster only).
    pub(super) route_port: Option<u16>,
}

impl Node {
    /// `count` nodes from `port` on: clients on `port + i`, routes on `port + 10 + i`.
    pub(super) fn table(port: u16, count: u8) -> Result<Vec<Self>, String> {
        if count <= 1 {
            return Ok(vec![Self { name: "nats", port, route_port: None }]);
        }
        (0..count)
            .map(|i| {
                let name = NODE_NAMES[usize::from(i)];
                let client = port.checked_add(u16::from(i));
                let route = port.checked_add(10 + u16::from(i));
                match (client, route) {
                    (Some(port), Some(r)) => Ok(Self { name, port, route_port: Some(r) }),
                    _ => Err(format!("--nats-port {port} leaves no port for {name}")),
                }
            })
            .collect()
    }

    /// The server name JetStream knows it by (`n1`), in a cluster.
    pub(super) fn server_name(&self) -> &'static str {
        self.name.trim_start_matches("nats-")
    }

    /// Its nats-server flags beyond authentication: address, JetStream in `store`, and
    /// in a cluster its name, route port and routes to the `others`.
    pub(super) fn args(&self, store: &Path, others: &[Self]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "-js".into(),
            "-sd".into(),
            store.display().to_string(),
        ];
        if let Some(route) = self.route_port {
            let routes: Vec<String> = others
                .iter()
                .filter(|o| o.name != self.name)
                .filter_map(|o| o.route_port.map(|p| format!("nats://127.0.0.1:{p}")))
                .collect();
            args.extend([
                "-n".into(),
                self.server_name().into(),
                "--cluster_name".into(),
                "game".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{route}"),
                "--routes".into(),
                routes.join(","),
            ]);
        }
        args
    }
}
