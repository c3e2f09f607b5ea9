//! Catalog files: the economy's configuration (the missions, the gifts) as TOML, read once
//! at start. A mistake stops the process with one line naming the file, the entry and the
//! field, so an operator fixes it before a player meets it.
//!
//! Each service declares its entries with serde (`deny_unknown_fields`: a misspelt key is
//! an error, not a silently ignored line) and converts them into its domain's catalog;
//! this module reads the file, decodes an entry naming the field at fault, and parses what
//! both catalogs share: the reset time, the time zone, instants.

use std::fmt;
use std::path::Path;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use kernel::schedule::Schedule;
use serde::de::DeserializeOwned;

/// What is wrong with a catalog file, as one line: `file: mission 'x': points: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    /// The entry at fault (`mission 'first-win'`), when it is one.
    pub entry: Option<String>,
    /// The field at fault, when one is.
    pub field: Option<String>,
    pub reason: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(entry) = &self.entry {
            write!(f, "{entry}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for FileError {}

/// A decoding failure before the file's name is known to it: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Option<String>,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: Some(field.into()), reason: reason.into() }
    }

    /// The same error in `file`, for `entry`.
    pub fn in_file(self, file: &Path, entry: Option<String>) -> FileError {
        FileError { file: file.display().to_string(), entry, field: self.field, reason: self.reason }
    }
}

/// Reads `path` as a TOML table.
///
/// # Errors
/// The file cannot be read, or is not TOML (the line of the mistake is named).
pub fn read(path: &Path) -> Result<toml::Table, FileError> {
    let at = |reason: String| FileError { file: path.display().to_string(), entry: None, field: None, reason };
    let text = std::fs::read_to_string(path).map_err(|e| at(format!("cannot read it: {e}")))?;
    text.parse::<toml::Table>().map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        at(match line {
            Some(n) => format!("line {n}: {}", e.message()),
            None => e.message().to_owned(),
        })
    })
}

/// Decodes `value` into `T`, naming the field at fault (an unknown key included).
///
/// # Errors
/// The field (when serde says which) and what is wrong with it, on one line.
pub fn decode<T: DeserializeOwned>(value: toml::Value) -> Result<T, FieldError> {
    T::deserialize(value).map_err(|e| {
        let message = e.message().to_owned();
        // serde names an unknown or missing key in the message, toml the path of a value
        // of the wrong type on a line of its own ("in `points`").
        let quoted =
            |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_owned);
        let path = e.to_string().lines().find_map(|l| l.strip_prefix("in `")?.strip_suffix('`').map(str::to_owned));
        let key = quoted("unknown field `").or_else(|| quoted("missing field `"));
        let field = match (path, key) {
            (Some(path), Some(key)) => Some(format!("{path}.{key}")),
            (path, key) => key.or(path),
        };
        FieldError { field, reason: message }
    })
}

/// The entries of the array of tables `key` (`[[missions]]`), each with a name for messages
/// (`mission 'code'`, or `mission #3` when it has no readable code).
///
/// # Errors
/// `key` is missing or not an array of tables.
pub fn entries(table: &mut toml::Table, key: &str, kind: &str) -> Result<Vec<(String, toml::Value)>, FieldError> {
    let Some(value) = table.remove(key) else {
        return Err(FieldError::new(key, format!("at least one {kind} (a [[{key}]] table)")));
    };
    let toml::Value::Array(items) = value else {
        return Err(FieldError::new(key, format!("must be an array of tables ([[{key}]])")));
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let name = match item.get("code").and_then(toml::Value::as_str) {
                Some(code) => format!("{kind} '{code}'"),
                None => format!("{kind} #{}", i + 1),
            };
            (name, item)
        })
        .collect())
}

/// What a catalog file holds besides its entries.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    reset_at: Option<String>,
    time_zone: Option<String>,
}

/// A whole catalog file: its schedule (`reset_at`, `time_zone`) and every `[[<key>]]`
/// entry decoded as `E` and made a rule by `rule`, in file order.
///
/// # Errors
/// The first mistake, naming the file, the entry (`<kind> 'code'`) and the field.
pub fn load<E: DeserializeOwned, R>(
    path: &Path,
    key: &str,
    kind: &str,
    rule: impl Fn(E) -> Result<R, FieldError>,
) -> Result<(Schedule, Vec<R>), FileError> {
    let mut table = read(path)?;
    let at = |e: FieldError, entry: Option<String>| e.in_file(path, entry);
    let entries = entries(&mut table, key, kind).map_err(|e| at(e, None))?;
    let header: Header = decode(toml::Value::Table(table)).map_err(|e| at(e, None))?;
    let schedule = schedule(header.reset_at.as_deref(), header.time_zone.as_deref()).map_err(|e| at(e, None))?;
    let mut rules = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        rules.push(decode::<E>(value).and_then(&rule).map_err(|e| at(e, Some(name)))?);
    }
    Ok((schedule, rules))
}

/// When periods reset, from the file's `reset_at` (`"04:00"` or `"04:00:05"`, default
/// midnight) and `time_zone` (an IANA name, default UTC).
///
/// # Errors
/// Naming `reset_at` or `time_zone`.
pub fn schedule(reset_at: Option<&str>, time_zone: Option<&str>) -> Result<Schedule, FieldError> {
    let mut s = Schedule::default();
    if let Some(raw) = reset_at {
        s.reset_at = NaiveTime::parse_from_str(raw, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(raw, "%H:%M"))
            .map_err(|_| FieldError::new("reset_at", format!("'{raw}' is not a time of day like \"04:00\"")))?;
    }
    if let Some(raw) = time_zone {
        s.time_zone = raw.parse::<Tz>().map_err(|_| {
            FieldError::new("time_zone", format!("'{raw}' is not an IANA time zone like \"Asia/Seoul\""))
        })?;
    }
    Ok(s)
}

/// An instant written as an RFC 3339 string or a TOML date-time, with its offset
/// (`2026-12-24T00:00:00+09:00`).
///
/// # Errors
/// Naming `field` when it is something else, or has no offset.
pub fn instant(field: &str, value: &toml::Value) -> Result<DateTime<Utc>, FieldError> {
    let raw = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => return Err(FieldError::new(field, "must be a date and time like \"2026-12-24T00:00:00+09:00\"")),
    };
    DateTime::parse_from_rfc3339(&raw).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        FieldError::new(
            field,
            format!("'{raw}' is not a date and time with an offset like \"2026-12-24T00:00:00+09:00\""),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Entry {
        code: String,
        points: i64,
    }

    fn value(text: &str) -> toml::Value {
        toml::Value::Table(text.parse::<toml::Table>().unwrap())
    }

    #[test]
    fn a_value_of_the_wrong_type_an_unknown_key_and_a_missing_one_are_named() {
        let e = decode::<Entry>(value("code = \"a\"\npoints = \"ten\"")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("points"), "{e:?}");
        let e = decode::<Entry>(value("code = \"a\"\npoints = 1\npionts = 2")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("pionts"), "{e:?}");
        assert!(e.reason.starts_with("unknown field"), "{e:?}");
        let e = decode::<Entry>(value("code = \"a\"")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("points"), "{e:?}");
    }

    #[test]
    fn a_file_that_is_not_toml_names_the_line_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "reset_at = \"04:00\"\n[[missions]\ncode = 1\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: line 2: ", path.display())), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        let missing = read(&dir.path().join("nope.toml")).unwrap_err().to_string();
        assert!(missing.contains("nope.toml: cannot read it"), "{missing}");
    }

    #[test]
    fn reset_times_zones_and_instants_are_parsed_or_named() {
        let s = schedule(Some("04:00:05"), Some("Asia/Seoul")).unwrap();
        assert_eq!((s.reset_at.to_string().as_str(), s.time_zone), ("04:00:05", chrono_tz::Asia::Seoul));
        assert_eq!(schedule(Some("04:00"), None).unwrap().reset_at, NaiveTime::from_hms_opt(4, 0, 0).unwrap());
        assert_eq!(schedule(None, None).unwrap(), Schedule::default());
        assert_eq!(schedule(Some("4pm"), None).unwrap_err().field.as_deref(), Some("reset_at"));
        assert_eq!(schedule(None, Some("Mars/Olympus")).unwrap_err().field.as_deref(), Some("time_zone"));
        let t = instant("available_from", &toml::Value::String("2026-12-24T00:00:00+09:00".into())).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-23T15:00:00+00:00");
        let d = value("t = 2026-12-24T00:00:00+09:00")["t"].clone();
        assert_eq!(instant("available_from", &d).unwrap(), t);
        let local = value("t = 2026-12-24T00:00:00")["t"].clone();
        assert_eq!(instant("available_from", &local).unwrap_err().field.as_deref(), Some("available_from"));
    }
}
