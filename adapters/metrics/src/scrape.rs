//! Reading a scrape back: fetch a `/metrics` URL and parse the Prometheus / OpenMetrics
//! text into samples (what `gamectl status` and the tests read).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One sample: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of a scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the text format; lines it cannot read are skipped.
    pub fn parse(text: &str) -> Self {
        Self { samples: text.lines().filter_map(sample).collect() }
    }

    /// The samples named `name` whose labels include every pair of `labels`.
    pub fn find<'a>(&'a self, name: &'a str, labels: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples
            .iter()
            .filter(move |s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v)))
    }

    /// The value of the one sample `name{labels}` (the sum when several match).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.find(name, labels).peekable();
        found.peek()?;
        Some(found.map(|s| s.value).sum())
    }

    /// Every name in the scrape.
    pub fn names(&self) -> std::collections::BTreeSet<&str> {
        self.samples.iter().map(|s| s.name.as_str()).collect()
    }
}

fn sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name_labels, rest) = match line.find('{') {
        Some(open) => {
            let close = open + line[open..].find('}')?;
            (&line[..=close], &line[close + 1..])
        }
        None => line.split_at(line.find(' ')?),
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match name_labels.split_once('{') {
        Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))?),
        None => (name_labels, BTreeMap::new()),
    };
    Some(Sample { name: name.to_owned(), labels, value })
}

/// `a="x",b="y \"q\""`
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        rest = after[end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    Some(labels)
}

/// GETs `url` (`http://host:port/path`, plain HTTP) within `timeout`.
///
/// # Errors
/// When the address does not answer, or answers other than 200.
pub async fn fetch(url: &str, timeout: Duration) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, _)| (h, &rest[h.len()..]));
    let get = async {
        let mut conn = tokio::net::TcpStream::connect(host).await.map_err(|e| format!("{url}: {e}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        conn.write_all(request.as_bytes()).await.map_err(|e| format!("{url}: {e}"))?;
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.map_err(|e| format!("{url}: {e}"))?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| format!("{url}: not an HTTP answer"))?;
        let status = head.lines().next().unwrap_or_default();
        if status.split_whitespace().nth(1).is_none_or(|code| code != "200") {
            return Err(format!("{url}: {status}"));
        }
        Ok(body.to_owned())
    };
    tokio::time::timeout(timeout, get).await.map_err(|_| format!("{url}: no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_their_labels() {
        let text =
            "# HELP x help\n# TYPE x counter\nx_total{a=\"1\",b=\"q\\\"z\"} 3\ny 2.5\nz_bucket{le=\"+Inf\"} 7\n# EOF\n";
        let s = Scrape::parse(text);
        assert_eq!(s.samples.len(), 3);
        assert_eq!(s.value("x_total", &[("a", "1")]), Some(3.0));
        assert_eq!(s.samples[0].labels["b"], "q\"z");
        assert_eq!(s.value("y", &[]), Some(2.5));
        assert_eq!(s.value("z_bucket", &[("le", "+Inf")]), Some(7.0));
        assert_eq!(s.value("x_total", &[("a", "2")]), None);
    }

    #[test]
    fn what_is_encoded_reads_back() {
        crate::enable();
        crate::consumers().pending("c-1", 5, 2);
        let s = Scrape::parse(&crate::encode());
        assert_eq!(s.value("consumer_lag", &[("consumer", "c-1")]), Some(5.0));
        assert_eq!(s.value("consumer_ack_pending", &[("consumer", "c-1")]), Some(2.0));
    }
}
