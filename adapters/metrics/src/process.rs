//! The process group: `readiness` (every gRPC server of the process ready) and
//! `build_info`.

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::parts::{Part, Parts};
use crate::{enabled, register};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Version {
    pub version: &'static str,
}

pub struct Process {
    pub readiness: Gauge,
    pub build_info: Family<Version, Gauge>,
    servers: Arc<Parts<bool>>,
}

pub fn process() -> &'static Process {
    static G: OnceLock<Process> = OnceLock::new();
    G.get_or_init(|| {
        let readiness: Gauge = Gauge::default();
        let r = readiness.clone();
        // Ready while every server of the process is (and at least one runs).
        let servers = Parts::new(move |ready: &[bool]| {
            r.set(i64::from(!ready.is_empty() && ready.iter().all(|r| *r)));
        });
        let g = Process { readiness, build_info: Family::default(), servers };
        register(
            "readiness",
            "1 while the role's dependencies answer (gRPC health SERVING), else 0.",
            g.readiness.clone(),
        );
        register("build_info", "Always 1; the version running, as a label.", g.build_info.clone());
        g
    })
}

impl Process {
    /// One gRPC server's readiness: `readiness` is 1 only while every server of the
    /// process is ready (all roles of an all-in-one process).
    pub fn server(&self) -> ServerReadiness {
        ServerReadiness(self.servers.join())
    }
}

pub struct ServerReadiness(Part<bool>);

impl ServerReadiness {
    pub fn ready(&self, ready: bool) {
        if enabled() {
            self.0.set(ready);
        }
    }
}
