//! `<data-dir>/endpoints.json`, written by `up`, and which address a client command dials:
//! the gateway, which routes every call by its gRPC service name.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE: &str = "endpoints.json";

/// Where clients go when nothing says otherwise: the gateway of `gamectl up` with the
/// default base port.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:50051";

/// `{"nats":"nats://127.0.0.1:50151","gateway":"http://127.0.0.1:50051",
///   "services":{"gateway":"http://127.0.0.1:50051","mission":"http://127.0.0.1:50052",...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    pub nats: String,
    /// The one address clients use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Every process `up` started, by name (the gateway included; a role's replicas after
    /// the first as `<role>-<r>`, e.g. `mission-2`).
    pub services: BTreeMap<String, String>,
    /// Where each of them serves its Prometheus metrics, by the same names
    /// (`"mission":"http://127.0.0.1:50252/metrics"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, String>,
}

impl Endpoints {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE)
    }

    /// # Errors
    /// When the text is not an endpoints document.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("not an endpoints file: {e}"))
    }

    /// `Ok(None)` when there is no file.
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed; the message names the file.
    pub fn load(data_dir: &Path) -> Result<Option<Self>, String> {
        let path = Self::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Self::parse(&text).map(Some).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the file whole or not at all, so a reader never sees half of it.
    ///
    /// # Errors
    /// When the data directory is not writable.
    pub fn write(&self, data_dir: &Path) -> std::io::Result<PathBuf> {
        let path = Self::path(data_dir);
        let tmp = data_dir.join(format!(".{FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer(&mut f, self)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// The gateway's address.
    pub fn gateway(&self) -> Option<&str> {
        self.gateway.as_deref().or_else(|| self.services.get("gateway").map(String::as_str))
    }
}

/// What a command dials, and how to name it in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// "the gateway", or the service's name with `--direct`.
    pub what: String,
    pub url: String,
}

/// The address to dial for a call to `service`:
/// `--endpoint` (or `GAMECTL_ENDPOINT`), else the gateway in endpoints.json, else
/// [`DEFAULT_GATEWAY`]. With `direct`, the service's own address from endpoints.json
/// instead of the gateway (for debugging a service behind it).
///
/// # Errors
/// When endpoints.json exists but is broken, or (with `direct`) is missing or does not
/// list the service.
pub fn resolve(service: &str, endpoint: Option<&str>, direct: bool, data_dir: &Path) -> Result<Target, String> {
    if let Some(e) = endpoint.filter(|e| !e.trim().is_empty()) {
        let what = if direct { service.to_owned() } else { "the gateway".to_owned() };
        return Ok(Target { what, url: normalize(e) });
    }
    let file = Endpoints::load(data_dir)?;
    if direct {
        let path = Endpoints::path(data_dir);
        let file = file.ok_or_else(|| {
            format!("--direct needs {} (is `gamectl up` running with this --data-dir?)", path.display())
        })?;
        let url =
            file.services.get(service).ok_or_else(|| format!("{} lists no address for {service}", path.display()))?;
        return Ok(Target { what: service.to_owned(), url: normalize(url) });
    }
    let url = file.as_ref().and_then(Endpoints::gateway).unwrap_or(DEFAULT_GATEWAY);
    Ok(Target { what: "the gateway".to_owned(), url: normalize(url) })
}

/// `127.0.0.1:50052` -> `http://127.0.0.1:50052`; a URL with a scheme stays as it is.
pub fn normalize(address: &str) -> String {
    let address = address.trim().trim_end_matches('/');
    if address.contains("://") { address.to_owned() } else { format!("http://{address}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Endpoints {
        Endpoints::parse(
            r#"{"nats":"nats://127.0.0.1:50151","gateway":"http://127.0.0.1:50051","services":{
                "gateway":"http://127.0.0.1:50051","mission":"http://127.0.0.1:50052",
                "wallet":"http://127.0.0.1:50054"}}"#,
        )
        .unwrap()
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gamectl-endpoints-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const NOWHERE: &str = "/nonexistent-gamectl-dir";

    #[test]
    fn an_endpoints_file_round_trips_in_the_documented_shape() {
        assert_eq!(
            serde_json::to_string(&sample()).unwrap(),
            r#"{"nats":"nats://127.0.0.1:50151","gateway":"http://127.0.0.1:50051","services":{"gateway":"http://127.0.0.1:50051","mission":"http://127.0.0.1:50052","wallet":"http://127.0.0.1:50054"}}"#
        );
    }

    #[test]
    fn a_file_of_an_earlier_gamectl_without_the_gateway_field_still_reads() {
        let old = Endpoints::parse(r#"{"nats":"n","services":{"gateway":"http://127.0.0.1:9"}}"#).unwrap();
        assert_eq!(old.gateway(), Some("http://127.0.0.1:9"));
        let older = Endpoints::parse(r#"{"nats":"n","services":{"mission":"http://127.0.0.1:9"}}"#).unwrap();
        assert_eq!(older.gateway(), None);
    }

    #[test]
    fn the_endpoint_flag_wins_over_everything() {
        let dir = Path::new(NOWHERE);
        let t = resolve("mission", Some("127.0.0.1:9000"), false, dir).unwrap();
        assert_eq!(t, Target { what: "the gateway".into(), url: "http://127.0.0.1:9000".into() });
        assert_eq!(resolve("mission", Some("https://api.example/"), false, dir).unwrap().url, "https://api.example");
        let dir = temp_dir();
        sample().write(&dir).unwrap();
        assert_eq!(resolve("wallet", Some("127.0.0.1:9000"), false, &dir).unwrap().url, "http://127.0.0.1:9000");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_service_is_called_through_the_gateway_of_the_file() {
        let dir = temp_dir();
        let mut e = sample();
        e.gateway = Some("http://127.0.0.1:56300".into());
        e.write(&dir).unwrap();
        assert_eq!(Endpoints::load(&dir).unwrap(), Some(e));
        for service in ["mission", "wallet", "reward", "auth"] {
            let t = resolve(service, None, false, &dir).unwrap();
            assert_eq!(t, Target { what: "the gateway".into(), url: "http://127.0.0.1:56300".into() });
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_file_the_default_gateway_is_called() {
        let t = resolve("mission", None, false, Path::new(NOWHERE)).unwrap();
        assert_eq!(t.url, DEFAULT_GATEWAY);
        let blank = resolve("mission", Some("  "), false, Path::new(NOWHERE)).unwrap();
        assert_eq!(blank.url, DEFAULT_GATEWAY);
    }

    #[test]
    fn a_broken_file_is_reported_not_ignored() {
        let dir = temp_dir();
        std::fs::write(Endpoints::path(&dir), "{").unwrap();
        let err = resolve("mission", None, false, &dir).unwrap_err();
        assert!(err.contains("endpoints.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn direct_calls_use_the_service_s_own_address() {
        let dir = temp_dir();
        sample().write(&dir).unwrap();
        let t = resolve("mission", None, true, &dir).unwrap();
        assert_eq!(t, Target { what: "mission".into(), url: "http://127.0.0.1:50052".into() });
        assert!(resolve("reward", None, true, &dir).unwrap_err().contains("no address for reward"));
        std::fs::remove_dir_all(&dir).unwrap();
        let err = resolve("mission", None, true, Path::new(NOWHERE)).unwrap_err();
        assert!(err.contains("/nonexistent-gamectl-dir/endpoints.json"), "{err}");
    }
}
