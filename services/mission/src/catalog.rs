//! The mission catalog file (`MISSION_CATALOG`, TOML) -> the domain's validated
//! [`Catalog`]. The format is documented in `config/missions.toml`, the built-in default
//! written out.

use std::path::Path;

use mission_domain::MissionCode;
use mission_domain::rules::{Catalog, MissionRule, Repeat, ReportedBy, parse_expiry};
use service_runtime::catalog_file::{self, FieldError, FileError};

/// One `[[missions]]` entry as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    code: String,
    title: String,
    points: i64,
    repeat: String,
    max_per_period: Option<u32>,
    reported_by: String,
    available_from: Option<toml::Value>,
    available_until: Option<toml::Value>,
    #[serde(default)]
    requires: Vec<String>,
    /// "365d", "12h", "30m", "2s"; absent: never.
    points_expire_after: Option<String>,
}

impl Entry {
    fn into_rule(self) -> Result<MissionRule, FieldError> {
        let code = |field: &str, raw: &str| {
            MissionCode::new(raw).map_err(|e| FieldError::new(field, format!("'{raw}': {}", e.reason)))
        };
        let instant = |field: &str, v: Option<toml::Value>| v.map(|v| catalog_file::instant(field, &v)).transpose();
        Ok(MissionRule {
            code: code("code", &self.code)?,
            title: self.title,
            points: self.points,
            repeat: Repeat::parse(&self.repeat).ok_or_else(|| {
                FieldError::new("repeat", format!("'{}' is not one of once, daily, weekly, unlimited", self.repeat))
            })?,
            max_per_period: self.max_per_period.unwrap_or(1),
            reported_by: ReportedBy::parse(&self.reported_by).ok_or_else(|| {
                FieldError::new("reported_by", format!("'{}' is not one of player, game_server", self.reported_by))
            })?,
            available_from: instant("available_from", self.available_from)?,
            available_until: instant("available_until", self.available_until)?,
            requires: self.requires.iter().map(|r| code("requires", r)).collect::<Result<_, _>>()?,
            points_expire_after: self
                .points_expire_after
                .map(|raw| parse_expiry(&raw).map_err(|e| FieldError::new("points_expire_after", e)))
                .transpose()?,
        })
    }
}

/// Reads and checks the catalog at `path`.
///
/// # Errors
/// The first mistake, naming the file, the mission and the field.
pub fn load(path: &Path) -> Result<Catalog, FileError> {
    let (schedule, missions) = catalog_file::load(path, "missions", "mission", Entry::into_rule)?;
    Catalog::new(schedule, missions).map_err(|e| FileError {
        file: path.display().to_string(),
        entry: e.mission.map(|m| format!("mission '{m}'")),
        field: Some(e.field.to_owned()),
        reason: e.reason,
    })
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;

    use super::*;

    fn load_text(text: &str) -> Result<Catalog, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missions.toml");
        std::fs::write(&path, text).unwrap();
        load(&path).map_err(|e| e.to_string().replace(&path.display().to_string(), "missions.toml"))
    }

    const ONE: &str = "[[missions]]\ncode = \"quest\"\ntitle = \"A quest\"\npoints = 5\nrepeat = \"daily\"\nreported_by = \"player\"\n";

    #[test]
    fn the_shipped_files_config_and_the_kubernetes_configmap_are_the_built_in_default_catalog() {
        for file in ["config/missions.toml", "k8s/base/catalog/missions.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(file);
            assert_eq!(load(&path).unwrap(), Catalog::default(), "{file}");
        }
    }

    #[test]
    fn a_catalog_with_every_field_is_read() {
        let text = format!(
            "reset_at = \"04:00\"\ntime_zone = \"Asia/Seoul\"\n{ONE}max_per_period = 2\n\
             available_from = \"2026-12-24T00:00:00+09:00\"\navailable_until = 2026-12-26T00:00:00+09:00\n\
             [[missions]]\ncode = \"boss\"\ntitle = \"Beat the boss\"\npoints = 50\nrepeat = \"once\"\n\
             reported_by = \"game_server\"\nrequires = [\"quest\"]\npoints_expire_after = \"365d\"\n"
        );
        let c = load_text(&text).unwrap();
        assert_eq!(c.schedule().reset_at, NaiveTime::from_hms_opt(4, 0, 0).unwrap());
        assert_eq!(c.schedule().time_zone, chrono_tz::Asia::Seoul);
        let quest = &c.missions()[0];
        assert_eq!((quest.repeat, quest.max_per_period, quest.reported_by), (Repeat::Daily, 2, ReportedBy::Player));
        assert_eq!(quest.available_from.unwrap().to_rfc3339(), "2026-12-23T15:00:00+00:00");
        assert_eq!(quest.available_until.unwrap().to_rfc3339(), "2026-12-25T15:00:00+00:00");
        assert_eq!(c.missions()[1].requires, vec![MissionCode::new("quest").unwrap()]);
        assert_eq!(c.missions()[1].points_expire_after, Some(std::time::Duration::from_secs(365 * 86_400)));
        assert_eq!(quest.points_expire_after, None, "default: never");
    }

    #[test]
    fn every_mistake_names_the_file_the_mission_and_the_field_on_one_line() {
        let cases = [
            (ONE.replace("points = 5", "points = \"five\""), "missions.toml: mission 'quest': points: invalid type"),
            (format!("{ONE}pionts = 5\n"), "missions.toml: mission 'quest': pionts: unknown field `pionts`"),
            (ONE.replace("title = \"A quest\"\n", ""), "missions.toml: mission 'quest': title: missing field `title`"),
            (ONE.replace("\"daily\"", "\"hourly\""), "missions.toml: mission 'quest': repeat: 'hourly' is not one of"),
            (ONE.replace("\"player\"", "\"client\""), "missions.toml: mission 'quest': reported_by: 'client'"),
            (ONE.replace("points = 5", "points = 0"), "missions.toml: mission 'quest': points: must be between"),
            (
                format!("{ONE}requires = [\"nope\"]\n"),
                "missions.toml: mission 'quest': requires: unknown mission 'nope'",
            ),
            (
                format!("{ONE}available_from = \"christmas\"\n"),
                "missions.toml: mission 'quest': available_from: 'christmas'",
            ),
            (ONE.replace("\"quest\"", "\"Quest!\""), "missions.toml: mission 'Quest!': code: 'Quest!'"),
            (format!("time_zone = \"Mars/Base\"\n{ONE}"), "missions.toml: time_zone: 'Mars/Base'"),
            (format!("colour = \"red\"\n{ONE}"), "missions.toml: colour: unknown field `colour`"),
            ("reset_at = \"04:00\"\n".to_owned(), "missions.toml: missions: at least one mission"),
            (format!("{ONE}{ONE}"), "missions.toml: mission 'quest': code: appears twice"),
            (
                format!("{ONE}points_expire_after = \"1y\"\n"),
                "missions.toml: mission 'quest': points_expire_after: '1y' is not a whole number",
            ),
            (
                format!("{ONE}points_expire_after = \"0s\"\n"),
                "missions.toml: mission 'quest': points_expire_after: must be between 1s and 36500d",
            ),
        ];
        for (text, expected) in cases {
            let e = load_text(&text).unwrap_err();
            assert!(e.starts_with(expected), "{e}\n  expected to start with: {expected}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}
