//! The gift catalog file (`GIFT_CATALOG`, TOML) -> the domain's validated [`Catalog`]. The
//! format is documented in `config/gifts.toml`, the built-in default written out.

use std::path::Path;

use gift_domain::GiftCode;
use gift_domain::rules::{Catalog, GiftRule, Limit, LimitPeriod};
use service_runtime::catalog_file::{self, FieldError, FileError};

/// One `[[gifts]]` entry as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    code: String,
    name: String,
    cost_points: i64,
    stock: Option<u32>,
    per_customer_limit: Option<LimitEntry>,
    available_from: Option<toml::Value>,
    available_until: Option<toml::Value>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitEntry {
    period: String,
    count: Option<u32>,
}

impl Entry {
    fn into_rule(self) -> Result<GiftRule, FieldError> {
        let instant = |field: &str, v: Option<toml::Value>| v.map(|v| catalog_file::instant(field, &v)).transpose();
        let per_customer = match self.per_customer_limit {
            None => None,
            Some(l) => Some(Limit {
                period: LimitPeriod::parse(&l.period).ok_or_else(|| {
                    FieldError::new(
                        "per_customer_limit",
                        format!("period '{}' is not one of daily, weekly, ever", l.period),
                    )
                })?,
                count: l.count.unwrap_or(1),
            }),
        };
        Ok(GiftRule {
            code: GiftCode::new(&self.code)
                .map_err(|e| FieldError::new("code", format!("'{}': {}", self.code, e.reason)))?,
            name: self.name,
            cost_points: self.cost_points,
            stock: self.stock,
            per_customer,
            available_from: instant("available_from", self.available_from)?,
            available_until: instant("available_until", self.available_until)?,
        })
    }
}

/// Reads and checks the catalog at `path`.
///
/// # Errors
/// The first mistake, naming the file, the gift and the field.
pub fn load(path: &Path) -> Result<Catalog, FileError> {
    let (schedule, gifts) = catalog_file::load(path, "gifts", "gift", Entry::into_rule)?;
    Catalog::new(schedule, gifts).map_err(|e| FileError {
        file: path.display().to_string(),
        entry: e.gift.map(|g| format!("gift '{g}'")),
        field: Some(e.field.to_owned()),
        reason: e.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Catalog, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gifts.toml");
        std::fs::write(&path, text).unwrap();
        load(&path).map_err(|e| e.to_string().replace(&path.display().to_string(), "gifts.toml"))
    }

    const ONE: &str = "[[gifts]]\ncode = \"hat\"\nname = \"A hat\"\ncost_points = 5\n";

    #[test]
    fn the_shipped_files_config_and_the_kubernetes_configmap_are_the_built_in_default_catalog() {
        for file in ["config/gifts.toml", "k8s/base/catalog/gifts.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(file);
            assert_eq!(load(&path).unwrap(), Catalog::default(), "{file}");
        }
    }

    #[test]
    fn a_catalog_with_every_field_is_read() {
        let text = format!(
            "reset_at = \"04:00:05\"\ntime_zone = \"Europe/Berlin\"\n{ONE}stock = 7\n\
             per_customer_limit = {{ period = \"weekly\", count = 2 }}\n\
             available_from = \"2026-12-24T00:00:00+09:00\"\navailable_until = 2026-12-26T00:00:00Z\n"
        );
        let c = load_text(&text).unwrap();
        assert_eq!(c.schedule().time_zone, chrono_tz::Europe::Berlin);
        let hat = &c.gifts()[0];
        assert_eq!((hat.stock, hat.per_customer), (Some(7), Some(Limit { period: LimitPeriod::Weekly, count: 2 })));
        assert!(hat.available_from.is_some() && hat.available_until.is_some());
        let plain = load_text(&format!("{ONE}per_customer_limit = {{ period = \"ever\" }}\n")).unwrap();
        assert_eq!(plain.gifts()[0].per_customer, Some(Limit { period: LimitPeriod::Ever, count: 1 }));
    }

    #[test]
    fn every_mistake_names_the_file_the_gift_and_the_field_on_one_line() {
        let cases = [
            (
                ONE.replace("cost_points = 5", "cost_points = \"5\""),
                "gifts.toml: gift 'hat': cost_points: invalid type",
            ),
            (format!("{ONE}stok = 5\n"), "gifts.toml: gift 'hat': stok: unknown field `stok`"),
            (format!("{ONE}stock = -1\n"), "gifts.toml: gift 'hat': stock: invalid value"),
            (
                format!("{ONE}per_customer_limit = {{ period = \"monthly\" }}\n"),
                "gifts.toml: gift 'hat': per_customer_limit: period 'monthly'",
            ),
            (
                format!("{ONE}per_customer_limit = {{ period = \"ever\", cuont = 1 }}\n"),
                "gifts.toml: gift 'hat': per_customer_limit.cuont: unknown field `cuont`",
            ),
            (ONE.replace("cost_points = 5", "cost_points = 0"), "gifts.toml: gift 'hat': cost_points: must be between"),
            (format!("{ONE}available_until = \"soon\"\n"), "gifts.toml: gift 'hat': available_until: 'soon'"),
            (format!("{ONE}{ONE}"), "gifts.toml: gift 'hat': code: appears twice"),
            ("time_zone = \"UTC\"\n".to_owned(), "gifts.toml: gifts: at least one gift"),
        ];
        for (text, expected) in cases {
            let e = load_text(&text).unwrap_err();
            assert!(e.starts_with(expected), "{e}\n  expected to start with: {expected}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}
