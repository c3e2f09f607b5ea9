//! [`CustomerId`]: one customer, one spelling.
//!
//! Every customer id that enters (registering, logging in, a mission a game server
//! reports, an admin's call, a row read back) goes through [`CustomerId::new`], which
//! puts it in its one form or refuses it, so two ids a player cannot tell apart are the
//! same id (`ADMIN`, `ａｄｍｉｎ` and `admin` are one account) or are not ids at all
//! (`admin\u{200B}`):
//!
//! 1. compatibility-composed (Unicode NFKC): fullwidth `ａ`, `ᴬ`, ligatures become `a`,
//!    `A`, `fi`;
//! 2. lower-cased (Unicode's full lower-case mapping, then NFKC again until nothing
//!    changes): a player who registered `Alice` logs in as `alice` or `ALICE` and is
//!    answered `alice`. Upper case is folded, not refused: players type their name the
//!    way they remember it, and every login form in the wild accepts that;
//! 3. refused when it holds an invisible character (a format or control character, a
//!    default-ignorable code point: zero-width space, joiners, bidi controls, the BOM,
//!    variation selectors, Hangul fillers, tags) or whitespace, naming the code point;
//! 4. refused unless each character is a letter or digit of any script, a combining mark
//!    on one (at most [`MAX_MARKS`] in a row), or printable ASCII punctuation: no
//!    symbols, no emoji, no non-ASCII punctuation (`‐` U+2010 would pass for `-`).
//!
//! Not covered: look-alike letters of different scripts (Cyrillic `а` for Latin `a`),
//! which needs Unicode's confusables data (UTS #39); such an id is a different,
//! visibly-typed id, not an invisible variant of another.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::ValidationError;

/// The most combining marks one letter may carry (more is "Zalgo" text, not a name).
pub const MAX_MARKS: usize = 4;

/// A customer as the game names them: an opaque string, in its one form (see the module).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerId(String);

impl CustomerId {
    /// The longest id, in bytes of its normalised form.
    pub const MAX_LEN: usize = 128;

    /// The id in its one form.
    ///
    /// # Errors
    /// `customer_id` when empty, longer than [`Self::MAX_LEN`] bytes (as given or
    /// normalised), or holding an invisible, whitespace or disallowed character.
    pub fn new(raw: impl Into<String>) -> Result<Self, ValidationError> {
        normalise(&raw.into()).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CustomerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid(reason: impl Into<String>) -> ValidationError {
    ValidationError::new("customer_id", reason)
}

/// The pure rule (see the module): `raw` in its one form, or why it is no id.
///
/// # Errors
/// `customer_id`, with the reason.
pub fn normalise(raw: &str) -> Result<String, ValidationError> {
    if raw.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if raw.len() > CustomerId::MAX_LEN {
        return Err(invalid(format!("must be at most {} bytes", CustomerId::MAX_LEN)));
    }
    if let Some((at, c)) = raw.chars().enumerate().find(|&(_, c)| invisible(c) || c.is_whitespace()) {
        return Err(invalid(format!(
            "must not contain invisible, format, control or whitespace characters (U+{:04X} at character {})",
            u32::from(c),
            at + 1
        )));
    }
    let id = if raw.is_ascii() { raw.to_ascii_lowercase() } else { fold(raw)? };
    if id.len() > CustomerId::MAX_LEN {
        return Err(invalid(format!("must be at most {} bytes once normalised", CustomerId::MAX_LEN)));
    }
    let mut marks = 0;
    for (at, c) in id.chars().enumerate() {
        let ok = if is_combining_mark(c) {
            marks += 1;
            at > 0 && marks <= MAX_MARKS
        } else {
            marks = 0;
            c.is_ascii_graphic() || (!c.is_ascii() && c.is_alphanumeric())
        };
        // After folding too: NFKC may turn a visible character into an invisible one.
        if !ok || invisible(c) || c.is_whitespace() {
            return Err(invalid(format!(
                "may hold only letters, digits, marks on them (at most {MAX_MARKS} each) and ASCII punctuation \
                 (U+{:04X} is not allowed)",
                u32::from(c)
            )));
        }
    }
    Ok(id)
}

/// NFKC and lower case, again until nothing changes (`ᴬ` composes to `A`, which lowers
/// to `a`): the form is then a fixed point, so reading a stored id back changes nothing.
fn fold(raw: &str) -> Result<String, ValidationError> {
    let mut id: String = raw.nfkc().collect();
    for _ in 0..4 {
        let next: String = id.to_lowercase().nfkc().collect();
        if next == id {
            return Ok(id);
        }
        id = next;
    }
    Err(invalid("has no stable lower-case form"))
}

/// A character nobody sees: controls (Cc), format characters (Cf) and the
/// default-ignorable code points (Unicode 16, DerivedCoreProperties.txt), which render
/// as nothing.
pub fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            u32::from(c),
            0x00AD
                | 0x034F
                | 0x061C
                | 0x0600..=0x0605
                | 0x06DD
                | 0x070F
                | 0x0890..=0x0891
                | 0x08E2
                | 0x115F..=0x1160
                | 0x17B4..=0x17B5
                | 0x180B..=0x180F
                | 0x200B..=0x200F
                | 0x202A..=0x202E
                | 0x2060..=0x206F
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFEFF
                | 0xFFA0
                | 0xFFF0..=0xFFFB
                | 0x110BD
                | 0x110CD
                | 0x13430..=0x1343F
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0000..=0xE0FFF
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> String {
        CustomerId::new(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}")).as_str().to_owned()
    }

    fn refused(raw: &str) -> ValidationError {
        CustomerId::new(raw).expect_err(raw)
    }

    #[test]
    fn given_an_ascii_id_in_any_case_when_normalised_then_it_is_its_lower_case() {
        assert_eq!(id("c-11"), "c-11");
        assert_eq!(id("ADMIN"), "admin");
        assert_eq!(id("Alice.Smith@example.com"), "alice.smith@example.com");
    }

    #[test]
    fn given_fullwidth_or_compatibility_lookalikes_when_normalised_then_they_are_the_plain_id() {
        // Fullwidth, modifier capitals, a ligature, mathematical letters.
        for lookalike in ["ａｄｍｉｎ", "ＡＤＭＩＮ", "ᴬᴰᴹᴵᴺ", "𝐚𝐝𝐦𝐢𝐧", "ａdmin"] {
            assert_eq!(id(lookalike), "admin", "{lookalike}");
        }
        assert_eq!(id("ﬁnn"), "finn");
        assert_eq!(id("Ⅻ-7"), "xii-7");
    }

    #[test]
    fn given_letters_of_other_scripts_when_normalised_then_they_stay_composed_and_lower_case() {
        assert_eq!(id("Zoë"), "zoë");
        assert_eq!(id("Zoe\u{308}"), "zoë"); // decomposed: composed by NFKC
        assert_eq!(id("ÉMILIE"), "émilie");
        assert_eq!(id("ΣΟΦΙΑ"), "σοφια");
        assert_eq!(id("たろう"), "たろう");
        assert_eq!(id("ﾀﾛｳ"), "タロウ"); // halfwidth katakana
        assert_eq!(id("नमस्ते"), "नमस्ते"); // a virama: a mark on a letter
        assert_eq!(id("สวัสดี"), "สวัสดี"); // Thai vowel and tone marks
    }

    #[test]
    fn given_an_invisible_character_when_normalised_then_it_is_refused_naming_the_field_and_the_code_point() {
        for (raw, cp) in [
            ("admin\u{200B}", "U+200B"),
            ("\u{FEFF}admin", "U+FEFF"),
            ("ad\u{200D}min", "U+200D"),
            ("admin\u{202E}", "U+202E"),
            ("admin\u{2066}", "U+2066"),
            ("admin\u{00AD}", "U+00AD"),
            ("admin\u{FE0F}", "U+FE0F"),
            ("admin\u{3164}", "U+3164"),
            ("admin\u{E0061}", "U+E0061"),
            ("admin\u{7}", "U+0007"),
            ("admin\u{85}", "U+0085"),
            ("c 11", "U+0020"),
            ("admin\u{A0}", "U+00A0"),
            ("admin\u{3000}", "U+3000"),
        ] {
            let e = refused(raw);
            assert_eq!(e.field, "customer_id");
            assert!(e.reason.contains(cp), "{raw:?}: {}", e.reason);
        }
    }

    #[test]
    fn given_symbols_emoji_or_lookalike_punctuation_when_normalised_then_they_are_refused() {
        for raw in [
            "admin\u{2010}x",
            "admin😀",
            "admin©x",
            "admin\u{E000}",
            "\u{301}admin",
            "q\u{301}\u{302}\u{303}\u{304}\u{305}",
        ] {
            assert_eq!(refused(raw).field, "customer_id", "{raw:?}");
        }
        // Four marks on one letter are still a name.
        assert!(CustomerId::new("q\u{301}\u{302}\u{303}\u{304}").is_ok());
    }

    #[test]
    fn given_an_empty_or_too_long_id_when_normalised_then_it_is_refused() {
        assert!(CustomerId::new("").is_err());
        assert!(CustomerId::new("x".repeat(129)).is_err());
        assert!(CustomerId::new("x".repeat(128)).is_ok());
        // Short as given, too long once composed (U+FDFA is 18 letters).
        assert!(CustomerId::new("\u{FDFA}".repeat(7)).is_err());
    }

    #[test]
    fn given_a_normalised_id_when_normalised_again_then_nothing_changes() {
        for raw in ["ADMIN", "ａｄｍｉｎ", "ᴬᴰᴹᴵᴺ", "Zoe\u{308}", "ΣΟΦΙΑ", "ﾀﾛｳ", "İstanbul", "Straße", "ǅemal"]
        {
            let once = id(raw);
            assert_eq!(id(&once), once, "{raw:?}");
        }
    }
}
