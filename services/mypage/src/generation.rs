//! Generations of the view: every page key of generation `g > 0` starts with
//! [`prefix`]`(g)` (generation 0, the first, has none), and one key of the bucket, [`KEY`],
//! says which generation is read ([`Pointer::serving`]) and which one a rebuild is
//! filling ([`Pointer::building`]). Facts are written to both while there is one being
//! built, to the building one first: whatever the serving generation shows, the one
//! being built already has, so switching over never takes a page back. After a switch
//! the generations before the one switched from are purged ([`purge_old`]).

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};

/// The pointer's key. `=` is not in the base64url alphabet of customer keys: no page key
/// can be it, or start like a generation's [`prefix`].
pub const KEY: &str = "=generation";

/// Which generations are read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pointer {
    /// The generation reads go to.
    pub serving: u64,
    /// The generation a rebuild is filling, written as well until it is switched to.
    pub building: Option<u64>,
}

impl Pointer {
    /// Where a fact goes, in order: the generation being built first, then the serving one.
    pub fn writes(&self) -> impl Iterator<Item = u64> + use<> {
        self.building.into_iter().chain(std::iter::once(self.serving))
    }

    pub fn encode(&self) -> String {
        match self.building {
            None => format!("serving {}\n", self.serving),
            Some(b) => format!("serving {}\nbuilding {b}\n", self.serving),
        }
    }

    /// The inverse of [`Pointer::encode`].
    ///
    /// # Errors
    /// What is wrong with `raw`.
    pub fn decode(raw: &[u8]) -> Result<Pointer, String> {
        let text = std::str::from_utf8(raw).map_err(|e| format!("generation pointer: {e}"))?;
        let mut p = Pointer::default();
        let mut serving = false;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (name, value) = line.split_once(' ').ok_or_else(|| format!("generation pointer: {line:?}"))?;
            let n: u64 = value.trim().parse().map_err(|e| format!("generation pointer: {line:?}: {e}"))?;
            match name {
                "serving" => (p.serving, serving) = (n, true),
                "building" => p.building = Some(n),
                _ => return Err(format!("generation pointer: unknown {name:?}")),
            }
        }
        if serving { Ok(p) } else { Err("generation pointer without a serving generation".into()) }
    }
}

/// The prefix of generation `g`'s keys.
pub fn prefix(g: u64) -> String {
    if g == 0 { String::new() } else { format!("=g{g}.") }
}

/// The pointer and its revision (0: not stored; generation 0 serves).
///
/// # Errors
/// The bucket unreachable, or a pointer that does not decode.
pub async fn read(bucket: &kv::Store) -> Result<(Pointer, u64), String> {
    match bucket.entry(KEY).await.map_err(|e| format!("generation pointer: {e}"))? {
        Some(e) if e.operation == Operation::Put => Ok((Pointer::decode(&e.value)?, e.revision)),
        _ => Ok((Pointer::default(), 0)),
    }
}

/// Writes `next` if the pointer is still at `revision`; `Ok(false)` when it moved.
async fn swap(bucket: &kv::Store, revision: u64, next: Pointer) -> Result<bool, String> {
    let value = next.encode().into_bytes().into();
    if revision == 0 {
        match bucket.create(KEY, value).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(format!("generation pointer: {e}")),
        }
    } else {
        match bucket.update(KEY, value, revision).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(format!("generation pointer: {e}")),
        }
    }
}

/// Starts a new generation: the next number after every one used so far, written from
/// now on beside the serving one. A rebuild that was abandoned (its process died) is
/// superseded. Returns the pointer as it was and the new generation.
///
/// # Errors
/// The bucket unreachable.
pub async fn begin(bucket: &kv::Store) -> Result<(Pointer, u64), String> {
    loop {
        let (now, revision) = read(bucket).await?;
        let next = now.serving.max(now.building.unwrap_or(0)) + 1;
        if swap(bucket, revision, Pointer { serving: now.serving, building: Some(next) }).await? {
            return Ok((now, next));
        }
    }
}

/// Makes `generation` the serving one, if it is still the one being built; `Ok(false)`
/// when another rebuild took over.
///
/// # Errors
/// When the bucket is unreachable.
pub async fn switch(bucket: &kv::Store, generation: u64) -> Result<bool, String> {
    loop {
        let (now, revision) = read(bucket).await?;
        if now.building != Some(generation) {
            return Ok(false);
        }
        if swap(bucket, revision, Pointer { serving: generation, building: None }).await? {
            return Ok(true);
        }
    }
}

/// Removes every key of the generations `1..serving` except `keep` (the one just switched
/// from: page tokens made in it keep reading it until the next rebuild), including
/// generations a crashed rebuild left half-built. Generation 0's keys have no common
/// prefix and stay. Returns how many stored values went.
///
/// # Errors
/// The bucket's stream unreachable.
pub async fn purge_old(bucket: &kv::Store, serving: u64, keep: u64) -> Result<u64, String> {
    let mut purged = 0;
    for g in (1..serving).filter(|g| *g != keep) {
        let subjects = format!("{}{}>", bucket.prefix, prefix(g));
        let r = bucket.stream.purge().filter(subjects).await.map_err(|e| format!("purge of generation {g}: {e}"))?;
        purged += r.purged;
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pointer_reads_back_and_writes_the_building_generation_first() {
        for p in [Pointer::default(), Pointer { serving: 3, building: Some(4) }] {
            assert_eq!(Pointer::decode(p.encode().as_bytes()), Ok(p));
        }
        assert_eq!(Pointer { serving: 3, building: Some(4) }.writes().collect::<Vec<_>>(), vec![4, 3]);
        assert_eq!(Pointer { serving: 3, building: None }.writes().collect::<Vec<_>>(), vec![3]);
        assert!(Pointer::decode(b"building 2\n").is_err());
        assert!(Pointer::decode(b"serving x\n").is_err());
    }

    #[test]
    fn generation_keys_cannot_be_customer_keys() {
        assert_eq!(prefix(0), "");
        assert_eq!(prefix(2), "=g2.");
        for c in ["anyone", "g2", "=g2"] {
            if let Ok(c) = kernel::CustomerId::new(c) {
                assert!(!crate::kv::key(&c).contains('='), "{c:?}");
            }
        }
    }
}
