//! The auth service's signing keys: Ed25519, one PKCS#8 PEM file per key in a directory
//! (`<created-millis>-<kid>.pem`, mode 0600). The newest key signs; older keys stay in
//! the published JWKS until every token they signed has expired, then are removed.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::secret::write_private;
use crate::{Claims, Role};

#[derive(Debug, Clone)]
struct StoredKey {
    kid: String,
    created_ms: i64,
    path: PathBuf,
}

/// The signing keys in a directory.
#[derive(Debug, Clone)]
pub struct KeyRing {
    dir: PathBuf,
    /// Lifetime of the tokens the keys sign: how long a retired key must still verify.
    token_ttl: Duration,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl KeyRing {
    /// Opens the ring, generating the first key when the directory has none.
    ///
    /// # Errors
    /// When the directory cannot be created or read, or a key cannot be written.
    pub fn open(dir: impl Into<PathBuf>, token_ttl: Duration) -> io::Result<Self> {
        let ring = Self { dir: dir.into(), token_ttl };
        create_private_dir(&ring.dir)?;
        if ring.stored()?.is_empty() {
            ring.rotate()?;
        }
        Ok(ring)
    }

    fn stored(&self) -> io::Result<Vec<StoredKey>> {
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".pem")) else {
                continue;
            };
            let Some((created, kid)) = name.split_once('-') else { continue };
            let Ok(created_ms) = created.parse() else { continue };
            keys.push(StoredKey { kid: kid.to_owned(), created_ms, path });
        }
        keys.sort_by_key(|k| k.created_ms);
        Ok(keys)
    }

    /// Makes a new key the signing key; returns its key id. Tokens signed by the
    /// previous key keep verifying until they expire.
    ///
    /// # Errors
    /// When randomness or the directory fails.
    pub fn rotate(&self) -> io::Result<String> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(other)?;
        // PKCS#8 v1 (no public key inside): the form jsonwebtoken derives JWKs from.
        let pair = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: SigningKey::from_bytes(&seed).to_bytes(),
            public_key: None,
        };
        let pem = pair.to_pkcs8_pem(LineEnding::LF).map_err(other)?;
        let kid = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        // Strictly after the newest key, even within one millisecond: the order of creation
        // decides which key signs.
        let newest = self.stored()?.last().map_or(i64::MIN, |k| k.created_ms);
        let created = Utc::now().timestamp_millis().max(newest.saturating_add(1));
        let path = self.dir.join(format!("{created}-{kid}.pem"));
        let tmp = self.dir.join(format!(".{kid}.tmp"));
        write_private(&tmp, pem.as_bytes())?;
        std::fs::rename(&tmp, &path)?;
        tracing::info!(kid, "signing key created");
        Ok(kid)
    }

    /// The keys that still verify tokens: the active one, and retired ones whose
    /// successor is younger than the token lifetime (plus a minute of clock leeway).
    fn live(&self) -> io::Result<Vec<StoredKey>> {
        let keys = self.stored()?;
        let now = Utc::now().timestamp_millis();
        let keep_ms = i64::try_from(self.token_ttl.as_millis()).unwrap_or(i64::MAX).saturating_add(60_000);
        let mut live = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let retired_at = keys.get(i + 1).map(|next| next.created_ms);
            match retired_at {
                Some(at) if now - at > keep_ms => {
                    let _ = std::fs::remove_file(&k.path);
                    tracing::info!(kid = k.kid, "expired signing key removed");
                }
                _ => live.push(k.clone()),
            }
        }
        Ok(live)
    }

    fn encoding_key(k: &StoredKey) -> io::Result<EncodingKey> {
        let pem = std::fs::read(&k.path)?;
        EncodingKey::from_ed_pem(&pem).map_err(other)
    }

    /// The active key: its id and signing key.
    ///
    /// # Errors
    /// When the directory or the key file cannot be read.
    pub fn active(&self) -> io::Result<(String, EncodingKey)> {
        let keys = self.stored()?;
        let k = keys.last().ok_or_else(|| other("no signing key"))?;
        Ok((k.kid.clone(), Self::encoding_key(k)?))
    }

    /// The public keys that verify tokens now, as a JWK set.
    ///
    /// # Errors
    /// When the directory or a key file cannot be read.
    pub fn jwks(&self) -> io::Result<JwkSet> {
        let mut keys = Vec::new();
        for k in self.live()? {
            let mut jwk = Jwk::from_encoding_key(&Self::encoding_key(&k)?, Algorithm::EdDSA).map_err(other)?;
            jwk.common.key_id = Some(k.kid.clone());
            jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            keys.push(jwk);
        }
        Ok(JwkSet { keys })
    }
}

/// The key directory, created readable by its owner only (0700).
#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Signs tokens with the ring's active key.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    pub ring: KeyRing,
    pub issuer: String,
    pub audience: String,
    pub ttl: Duration,
}

impl TokenIssuer {
    /// A signed token for `customer_id` with `role`, and its lifetime in seconds.
    ///
    /// # Errors
    /// When the signing key cannot be read.
    pub fn issue(&self, customer_id: &str, role: Role) -> io::Result<(String, i64)> {
        self.issue_with(customer_id, role, self.ttl, None)
    }

    /// A signed token for `subject` with `role` living `ttl`, and its lifetime in seconds.
    /// `iat` is at least `min_issued_at`: a token issued in the second of a revocation of
    /// `subject`'s tokens (which refuses those with an earlier `iat`) must still be
    /// accepted (see [`crate::revoked`]).
    ///
    /// # Errors
    /// When the signing key cannot be read.
    pub fn issue_with(
        &self,
        subject: &str,
        role: Role,
        ttl: Duration,
        min_issued_at: Option<i64>,
    ) -> io::Result<(String, i64)> {
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX).max(1);
        let iat = min_issued_at.map_or(now, |min| now.max(min));
        let claims = Claims {
            sub: subject.to_owned(),
            iss: self.issuer.clone(),
            aud: serde_json::Value::String(self.audience.clone()),
            exp: now.saturating_add(ttl),
            iat,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            role: Some(role.as_str().to_owned()),
            realm_access: None,
        };
        Ok((self.sign(&claims)?, ttl))
    }

    /// Signs arbitrary claims (tests use it to make expired or foreign tokens).
    ///
    /// # Errors
    /// When the signing key cannot be read.
    pub fn sign(&self, claims: &Claims) -> io::Result<String> {
        let (kid, key) = self.ring.active()?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, claims, &key).map_err(other)
    }
}
