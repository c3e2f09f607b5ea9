//! `<data-dir>/endpoints.json`: where `up` put everything, and how clients find a service.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE: &str = "endpoints.json";

/// `{"nats":"nats://127.0.0.1:50151","services":{"mission":"http://127.0.0.1:50052",...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    pub nats: String,
    pub services: BTreeMap<String, String>,
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

    /// # Errors
    /// When the file cannot be read or parsed; the message names the file.
    pub fn load(data_dir: &Path) -> Result<Self, String> {
        let path = Self::path(data_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {}: {e} (is `gamectl up` running with this --data-dir? or pass --endpoint)",
                path.display()
            )
        })?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
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

    /// The service's own address, else the gateway's (which routes to every service).
    pub fn address(&self, service: &str) -> Option<&str> {
        self.services.get(service).or_else(|| self.services.get("gateway")).map(String::as_str)
    }
}

/// The URL to dial for `service`: `--endpoint` when given, else endpoints.json.
///
/// # Errors
/// When there is no `--endpoint` and endpoints.json is missing or does not know the
/// service.
pub fn resolve(service: &str, endpoint: Option<&str>, data_dir: &Path) -> Result<String, String> {
    if let Some(e) = endpoint.filter(|e| !e.trim().is_empty()) {
        return Ok(normalize(e));
    }
    let endpoints = Endpoints::load(data_dir)?;
    endpoints
        .address(service)
        .map(normalize)
        .ok_or_else(|| format!("{} lists no address for {service}", Endpoints::path(data_dir).display()))
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
            r#"{"nats":"nats://127.0.0.1:50151","services":{
                "mission":"http://127.0.0.1:50052","wallet":"http://127.0.0.1:50054"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn an_endpoints_file_round_trips_in_the_documented_shape() {
        let e = sample();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"nats":"nats://127.0.0.1:50151","services":{"mission":"http://127.0.0.1:50052","wallet":"http://127.0.0.1:50054"}}"#
        );
    }

    #[test]
    fn a_service_is_found_by_its_name() {
        assert_eq!(sample().address("wallet"), Some("http://127.0.0.1:50054"));
        assert_eq!(sample().address("reward"), None);
    }

    #[test]
    fn a_service_without_its_own_entry_goes_through_the_gateway() {
        let mut e = sample();
        e.services.insert("gateway".into(), "http://127.0.0.1:50051".into());
        assert_eq!(e.address("reward"), Some("http://127.0.0.1:50051"));
        assert_eq!(e.address("mission"), Some("http://127.0.0.1:50052"));
    }

    #[test]
    fn the_endpoint_flag_wins_over_the_file() {
        let dir = Path::new("/nonexistent-gamectl-dir");
        assert_eq!(resolve("mission", Some("127.0.0.1:9000"), dir).unwrap(), "http://127.0.0.1:9000");
        assert_eq!(resolve("mission", Some("https://api.example/"), dir).unwrap(), "https://api.example");
    }

    #[test]
    fn a_missing_file_says_which_file_and_what_to_do() {
        let err = resolve("mission", None, Path::new("/nonexistent-gamectl-dir")).unwrap_err();
        assert!(err.contains("/nonexistent-gamectl-dir/endpoints.json"), "{err}");
        assert!(err.contains("--endpoint"), "{err}");
    }

    #[test]
    fn a_written_file_is_read_back_and_resolves() {
        let dir = std::env::temp_dir().join(format!("gamectl-endpoints-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        sample().write(&dir).unwrap();
        assert_eq!(Endpoints::load(&dir).unwrap(), sample());
        assert_eq!(resolve("mission", None, &dir).unwrap(), "http://127.0.0.1:50052");
        assert!(resolve("reward", None, &dir).unwrap_err().contains("no address for reward"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
