//! Whether a customer is registered, asked of our auth service (`GET <url>/<id>`): the
//! mission service asks before it records a game server's report, so that points are
//! never reported for an id nobody holds (and inherited by whoever registers it later).
//!
//! Customers are never deleted, so a yes is kept (up to [`Lookup::KEPT`] ids, then the
//! cache starts again); a no is asked again each time (the customer may register next).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// The registry of customers at `urls` (e.g. `http://auth:8081/customers`; each replica's,
/// asked in turn until one answers).
pub struct Lookup {
    urls: Vec<String>,
    known: Mutex<HashSet<String>>,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<bytes::Bytes>,
    >,
}

impl Lookup {
    /// How many registered ids are remembered.
    pub const KEPT: usize = 100_000;
    /// How long one question may take.
    pub const TIMEOUT: Duration = Duration::from_secs(3);

    /// `urls`: comma-separated.
    ///
    /// # Errors
    /// When there is none, or one is not an `http://` URL.
    pub fn new(urls: &str) -> Result<Self, String> {
        let urls: Vec<String> =
            urls.split(',').map(|u| u.trim().trim_end_matches('/').to_owned()).filter(|u| !u.is_empty()).collect();
        if urls.is_empty() {
            return Err("no URL".into());
        }
        for url in &urls {
            let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                return Err(format!("{url}: an http:// URL of the auth service's /customers is expected"));
            }
        }
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        Ok(Self { urls, known: Mutex::new(HashSet::new()), client })
    }

    /// Whether `customer` (an id in its one form) is registered.
    ///
    /// # Errors
    /// When the auth service cannot answer now (unreachable, slow, or any answer but 200
    /// and 404), saying so.
    pub async fn is_registered(&self, customer: &str) -> Result<bool, String> {
        if self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(customer) {
            return Ok(true);
        }
        let mut failures = Vec::new();
        for base in &self.urls {
            match self.ask(base, customer).await {
                Ok(registered) => {
                    if registered {
                        let mut known = self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if known.len() >= Self::KEPT {
                            known.clear();
                        }
                        known.insert(customer.to_owned());
                    }
                    return Ok(registered);
                }
                Err(e) => failures.push(e),
            }
        }
        Err(failures.join("; "))
    }

    async fn ask(&self, base: &str, customer: &str) -> Result<bool, String> {
        let url = format!("{base}/{}", escape(customer));
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let answer = tokio::time::timeout(Self::TIMEOUT, self.client.get(uri))
            .await
            .map_err(|_| format!("the auth service ({base}) did not answer in time"))?
            .map_err(|e| format!("the auth service ({base}): {e}"))?;
        match answer.status() {
            http::StatusCode::OK => Ok(true),
            http::StatusCode::NOT_FOUND => Ok(false),
            other => Err(format!("the auth service ({base}) answered HTTP {other}")),
        }
    }
}

/// `id` as one path segment: every byte but the unreserved ones (RFC 3986) percent-encoded.
fn escape(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_one_path_segment_whatever_it_holds() {
        assert_eq!(escape("c-11"), "c-11");
        assert_eq!(escape("a/b?c#d%"), "a%2Fb%3Fc%23d%25");
        assert_eq!(escape("zoë"), "zo%C3%AB");
    }

    #[test]
    fn only_an_http_url_is_taken() {
        assert!(Lookup::new("http://auth:8081/customers/").is_ok());
        assert!(Lookup::new("http://a:1/customers, http://b:1/customers").is_ok());
        assert!(Lookup::new(" ").is_err());
        assert!(Lookup::new("https://auth/customers").is_err());
        assert!(Lookup::new("auth:8081").is_err());
    }
}
