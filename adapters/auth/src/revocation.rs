//! The revocations our auth service publishes at `GET /revocations`, without naming
//! anyone: each revoked subject is served as its HMAC-SHA256 under the revocation key
//! (`REVOCATION_KEY_FILE`), a secret the auth service and every verifier (each service,
//! the gateway) hold. A verifier seals the subject of the token in hand and looks it up;
//! whoever reaches the auth service without the key learns how many revocations there
//! are and when, not whose, and cannot test a guessed customer id.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Keys shorter than this are refused (`gamectl up` writes 64 hex digits).
const MIN_KEY_LEN: usize = 32;

/// The secret revoked subjects are sealed with. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct RevocationKey(Vec<u8>);

impl std::fmt::Debug for RevocationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevocationKey(..)")
    }
}

/// A subject sealed with the [`RevocationKey`]: HMAC-SHA256, 64 lowercase hex digits on
/// the wire.
pub type Sealed = [u8; 32];

impl RevocationKey {
    /// The key in `path`: its first line, at least 32 characters (e.g. 32 random bytes in
    /// hex, as `gamectl up` and `openssl rand -hex 32` write them).
    ///
    /// # Errors
    /// The file unreadable or the key too short, with the path.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let key = text.lines().next().unwrap_or_default().trim();
        if key.len() < MIN_KEY_LEN {
            return Err(format!("{}: the key must be at least {MIN_KEY_LEN} characters", path.display()));
        }
        Ok(Self(key.as_bytes().to_vec()))
    }

    /// A random key, for a verifier that fetches no revocations (it seals only the ones
    /// it is given, e.g. in tests).
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        // Without randomness the key is only used by this process on what it was given:
        // nothing sealed with it leaves the process.
        let _ = getrandom::getrandom(&mut bytes);
        Self(bytes.to_vec())
    }

    /// `subject` sealed with this key.
    pub fn seal(&self, subject: &str) -> Sealed {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(subject.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// What tells whether a list was sealed with this key: the empty subject sealed (no
    /// token has an empty `sub`), in hex.
    pub fn check(&self) -> String {
        hex(&self.seal(""))
    }

    /// The wire form of `revocations`: each subject sealed.
    pub fn publish(&self, revocations: &[Revocation]) -> RevocationList {
        let revocations = revocations
            .iter()
            .map(|r| SealedRevocation { subject_hmac: hex(&self.seal(&r.subject)), before: r.before })
            .collect();
        RevocationList { key_check: self.check(), revocations }
    }

    /// The revocations of a list sealed with this key.
    ///
    /// # Errors
    /// When the list was sealed with another key (the auth service's `REVOCATION_KEY_FILE`
    /// is not this one: nothing in it would ever match), or a subject is malformed.
    pub fn open(&self, list: RevocationList) -> Result<Vec<(Sealed, i64)>, String> {
        if list.key_check != self.check() {
            return Err("the revocations are sealed with another key than our REVOCATION_KEY_FILE".into());
        }
        list.revocations.into_iter().map(|r| Ok((parse_sealed(&r.subject_hmac)?, r.before))).collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The inverse of [`hex`] for a sealed subject.
///
/// # Errors
/// When `text` is not 64 hex digits.
pub fn parse_sealed(text: &str) -> Result<Sealed, String> {
    let bad = || format!("subject_hmac: not 64 hex digits: {text:?}");
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Every token of `subject` issued before `before` (`iat`, seconds since the epoch) is
/// refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub subject: String,
    pub before: i64,
}

/// What `GET /revocations` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevocationList {
    /// [`RevocationKey::check`] of the key the list is sealed with.
    pub key_check: String,
    pub revocations: Vec<SealedRevocation>,
}

/// A revocation as served: its subject sealed ([`RevocationKey::seal`], in hex).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealedRevocation {
    pub subject_hmac: String,
    pub before: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> RevocationKey {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocation.key");
        std::fs::write(&path, format!("{text}\n")).unwrap();
        RevocationKey::from_file(&path).unwrap()
    }

    #[test]
    fn the_published_list_names_nobody_and_reads_back_only_with_the_key() {
        let k = key(&"k".repeat(64));
        let list = k.publish(&[Revocation { subject: "alice".into(), before: 7 }]);
        let text = serde_json::to_string(&list).unwrap();
        assert!(!text.contains("alice"), "{text}");
        let served = &list.revocations[0];
        assert_eq!((parse_sealed(&served.subject_hmac), served.before), (Ok(k.seal("alice")), 7));
        assert_ne!(k.seal("alice"), k.seal("bob"));
        assert_eq!(k.open(list.clone()), Ok(vec![(k.seal("alice"), 7)]));
        // another key (a guess without the secret) seals differently, and says so
        let other = key(&"x".repeat(64));
        assert_ne!(other.seal("alice"), k.seal("alice"));
        assert!(other.open(list).unwrap_err().contains("another key"));
        assert!(format!("{k:?}").ends_with("(..)"), "the key stays out of logs");
    }

    #[test]
    fn a_short_or_missing_key_and_a_malformed_seal_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "not long enough\n").unwrap();
        assert!(RevocationKey::from_file(&short).unwrap_err().contains("at least 32"));
        assert!(RevocationKey::from_file(&dir.path().join("none")).unwrap_err().contains("none"));
        for bad in ["", "zz", &"g".repeat(64), &"a".repeat(63), &"é".repeat(32)] {
            assert!(parse_sealed(bad).is_err(), "{bad}");
        }
    }
}
