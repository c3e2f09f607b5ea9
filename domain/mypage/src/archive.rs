//! Keeping a page small however long the history: the page document holds the totals
//! and the [`RECENT`] most recent entries; older entries are archived, each under its own
//! key, their mission ids listed in chunks of [`CHUNK`] that are written once.
//!
//! The page document stays the one point of agreement (its revision is checked on every
//! write): what it decides to archive is first recorded in it ([`Archive::pending`]
//! entries, [`Archive::unsealed`] chunks) and written to the other keys after the page
//! is stored; whoever next reads the page writes them again if that did not happen.
//! Those writes are safe to repeat in any order: an entry is written merged with what is
//! stored ([`Entry::merge`]), a chunk's content never changes once decided.

use std::collections::HashMap;

use uuid::Uuid;

use crate::model::{Entry, MyPage};

/// Entries the page document itself holds.
pub const RECENT: usize = 50;
/// Mission ids per archive chunk.
pub const CHUNK: usize = 50;

/// The older entries of a page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Archive {
    /// Chunks numbered `0..sealed` are decided (those in `unsealed` maybe not written yet).
    pub sealed: u64,
    /// Archived mission ids not in a chunk yet, in the order they were archived; they
    /// become chunk number `sealed`, in this order.
    pub tail: Vec<Uuid>,
    /// Decided chunks that may not be written yet.
    pub unsealed: Vec<Chunk>,
    /// Archived entries that may not be written to their own keys yet (or changed since).
    pub pending: Vec<Entry>,
}

/// Mission ids archived together, in the order they were archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub number: u64,
    pub ids: Vec<Uuid>,
}

impl Archive {
    /// The archived entry of mission `id`: its stored copy merged with a pending one.
    /// `None` when the mission is not archived (or not known at all).
    pub fn stored(&self, id: Uuid, stored: Option<&Entry>) -> Option<Entry> {
        let pending = self.pending.iter().find(|e| e.mission_id == id);
        match (stored, pending) {
            (None, None) => None,
            (Some(e), None) | (None, Some(e)) => Some(e.clone()),
            (Some(s), Some(p)) => {
                let mut e = s.clone();
                e.merge(p);
                Some(e)
            }
        }
    }

    /// Records a new state of an archived entry, to be written.
    pub fn keep(&mut self, entry: Entry) {
        match self.pending.iter_mut().find(|e| e.mission_id == entry.mission_id) {
            Some(e) => *e = entry,
            None => self.pending.push(entry),
        }
    }

    /// Forgets what was written: pending entries still equal to the written ones, and
    /// the written chunks.
    pub fn written(&mut self, entries: &[Entry], chunks: &[Chunk]) {
        let written: HashMap<Uuid, &Entry> = entries.iter().map(|e| (e.mission_id, e)).collect();
        self.pending.retain(|e| written.get(&e.mission_id).is_none_or(|w| *w != e));
        self.unsealed.retain(|c| !chunks.iter().any(|w| w.number == c.number));
    }

    /// The ids of chunk `number` when the page itself holds them: the tail (the chunk to
    /// come) or a chunk not written yet.
    pub fn held(&self, number: u64) -> Option<&[Uuid]> {
        if number == self.sealed {
            return Some(&self.tail);
        }
        self.unsealed.iter().find(|c| c.number == number).map(|c| c.ids.as_slice())
    }
}

impl MyPage {
    /// Moves the oldest entries beyond [`RECENT`] into the archive, and the archive's tail
    /// into chunks of [`CHUNK`]. Returns whether anything moved.
    pub fn settle(&mut self) -> bool {
        let over = self.entries.len().saturating_sub(RECENT);
        for e in self.entries.drain(..over) {
            self.archive.tail.push(e.mission_id);
            self.archive.keep(e);
        }
        while self.archive.tail.len() >= CHUNK {
            let ids: Vec<Uuid> = self.archive.tail.drain(..CHUNK).collect();
            self.archive.unsealed.push(Chunk { number: self.archive.sealed, ids });
            self.archive.sealed += 1;
        }
        over > 0
    }
}

/// Where a page of entries starts, newest first: below a mission among the recent
/// entries, or below a position in an archive chunk (positions never move: chunks and the
/// tail only grow at their end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Recent { before: Option<Uuid> },
    Archive { chunk: u64, before: usize, below: Option<Uuid> },
}

impl Cursor {
    pub const FIRST: Cursor = Cursor::Recent { before: None };

    /// The textual form inside a page token: `r`, `r.<uuid>`, `a.<chunk>.<position>[.<uuid>]`.
    pub fn render(&self) -> String {
        match self {
            Cursor::Recent { before: None } => "r".into(),
            Cursor::Recent { before: Some(id) } => format!("r.{}", id.hyphenated()),
            Cursor::Archive { chunk, before, below: None } => format!("a.{chunk}.{before}"),
            Cursor::Archive { chunk, before, below: Some(id) } => format!("a.{chunk}.{before}.{}", id.hyphenated()),
        }
    }

    /// Strict inverse of [`Cursor::render`]; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Cursor> {
        let parts: Vec<&str> = raw.split('.').collect();
        let id = |s: &str| Uuid::try_parse(s).ok().filter(|u| u.hyphenated().to_string() == s);
        let number = |s: &str| s.parse::<u64>().ok().filter(|n| n.to_string() == s);
        let cursor = match parts.as_slice() {
            ["r"] => Cursor::Recent { before: None },
            ["r", u] => Cursor::Recent { before: Some(id(u)?) },
            ["a", c, p] => {
                Cursor::Archive { chunk: number(c)?, before: usize::try_from(number(p)?).ok()?, below: None }
            }
            ["a", c, p, u] => {
                Cursor::Archive { chunk: number(c)?, before: usize::try_from(number(p)?).ok()?, below: Some(id(u)?) }
            }
            _ => return None,
        };
        (cursor.render() == raw).then_some(cursor)
    }
}

/// What one step of reading a page yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Recent entries, newest first.
    pub recent: Vec<Entry>,
    /// Archived mission ids to read, newest first.
    pub archived: Vec<Uuid>,
    /// Where the next page starts; `None` at the oldest entry.
    pub next: Option<Cursor>,
}

/// What [`plan`] needs or gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// The ids of this archive chunk must be read first (then plan again).
    Chunk(u64),
    /// The page to read.
    Step(Step),
}

/// A cursor no page of this history can hold: an archive chunk beyond those the page has
/// decided (a forged or foreign page token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor at archive chunk {chunk}, the page has {sealed}")]
pub struct BeyondPage {
    pub chunk: u64,
    pub sealed: u64,
}

/// The most archive chunks one page of `size` entries crosses: every chunk it needs
/// (each holds [`CHUNK`] ids), the tail and a partly read one. A page that skips more
/// (entries read already) stops there, shorter, with a cursor to the next: whatever its
/// cursor, a request costs at most this many chunk reads.
pub fn chunks_per_page(size: usize) -> usize {
    size.div_ceil(CHUNK) + 2
}

/// Plans reading up to `size` entries from `cursor`. `chunk(n)` gives the ids of archive
/// chunk `n` when they were read (it is asked only for chunks the page does not hold);
/// planning stops at the first chunk not read yet ([`Planned::Chunk`]). A page crosses
/// at most [`chunks_per_page`] chunks.
///
/// # Errors
/// [`BeyondPage`] for a cursor in a chunk the page does not have.
pub fn plan(
    page: &MyPage,
    mut cursor: Cursor,
    size: usize,
    mut chunk: impl FnMut(u64) -> Option<Vec<Uuid>>,
) -> Result<Planned, BeyondPage> {
    if let Cursor::Archive { chunk, .. } = cursor
        && chunk > page.archive.sealed
    {
        return Err(BeyondPage { chunk, sealed: page.archive.sealed });
    }
    let mut step = Step { recent: Vec::new(), archived: Vec::new(), next: None };
    let want = |s: &Step| s.recent.len() + s.archived.len() < size;
    let mut crossed = 0;
    loop {
        match cursor {
            Cursor::Recent { before } => {
                let older = page.entries.iter().rev().filter(|e| before.is_none_or(|b| e.mission_id < b));
                let mut last = None;
                let mut more = false;
                for e in older {
                    if !want(&step) {
                        more = true;
                        break;
                    }
                    last = Some(e.mission_id);
                    step.recent.push(e.clone());
                }
                if more {
                    step.next = Some(Cursor::Recent { before: last });
                    return Ok(Planned::Step(step));
                }
                // on into the archive, newest chunk (the tail) first, skipping what moved
                // there from the recent entries since the page before
                cursor = Cursor::Archive { chunk: page.archive.sealed, before: usize::MAX, below: last.or(before) };
            }
            Cursor::Archive { chunk: n, before, below } => {
                if crossed == chunks_per_page(size) {
                    step.next = Some(cursor);
                    return Ok(Planned::Step(step));
                }
                crossed += 1;
                let ids = match page.archive.held(n) {
                    Some(ids) => ids.to_vec(),
                    None => match chunk(n) {
                        Some(ids) => ids,
                        None => return Ok(Planned::Chunk(n)),
                    },
                };
                let end = before.min(ids.len());
                let mut at = end;
                while at > 0 && want(&step) {
                    at -= 1;
                    if below.is_none_or(|b| ids[at] < b) {
                        step.archived.push(ids[at]);
                    }
                }
                if at > 0 {
                    step.next = Some(Cursor::Archive { chunk: n, before: at, below });
                    return Ok(Planned::Step(step));
                }
                if n == 0 {
                    return Ok(Planned::Step(step));
                }
                let older = Cursor::Archive { chunk: n - 1, before: usize::MAX, below };
                if !want(&step) {
                    step.next = Some(older);
                    return Ok(Planned::Step(step));
                }
                cursor = older;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use kernel::CustomerId;

    use super::*;
    use crate::model::{Fact, RewardStatus};

    fn achieved(id: Uuid) -> Fact {
        Fact::MissionAchieved { mission_id: id, mission_code: "match-played".into(), points: 1 }
    }

    fn issued(id: Uuid) -> Fact {
        Fact::RewardIssued { mission_id: id, reward_id: Uuid::now_v7(), points: 1 }
    }

    /// A page, its mission ids oldest first, the archived entries and the chunks written.
    type History = (MyPage, Vec<Uuid>, HashMap<Uuid, Entry>, HashMap<u64, Vec<Uuid>>);

    /// A page after `n` missions, each achieved then issued; archived entries "written"
    /// into `store` as the service would.
    fn history(n: usize) -> History {
        let mut page = MyPage::empty(CustomerId::new("whale").unwrap());
        let (mut store, mut chunks) = (HashMap::new(), HashMap::new());
        let mut ids = Vec::new();
        for _ in 0..n {
            let id = Uuid::now_v7();
            ids.push(id);
            for f in [achieved(id), issued(id)] {
                let archived = store.get(&id);
                page.apply(&f, archived, Utc::now());
            }
            page.settle();
            write(&mut page, &mut store, &mut chunks);
        }
        (page, ids, store, chunks)
    }

    fn write(page: &mut MyPage, store: &mut HashMap<Uuid, Entry>, chunks: &mut HashMap<u64, Vec<Uuid>>) {
        let (entries, unsealed) = (page.archive.pending.clone(), page.archive.unsealed.clone());
        for e in &entries {
            store.entry(e.mission_id).or_insert_with(|| e.clone()).merge(e);
        }
        for c in &unsealed {
            chunks.insert(c.number, c.ids.clone());
        }
        page.archive.written(&entries, &unsealed);
    }

    #[test]
    fn given_a_long_history_then_the_page_holds_the_totals_and_only_the_recent_entries() {
        let (page, ids, store, chunks) = history(1234);
        assert_eq!(page.entries.len(), RECENT);
        assert_eq!(page.entries.last().unwrap().mission_id, *ids.last().unwrap());
        assert_eq!((page.entry_count, page.points_issued, page.points_exchanged), (1234, 1234, 0));
        assert_eq!(page.archive.sealed, ((1234 - RECENT) / CHUNK) as u64);
        assert!(page.archive.tail.len() < CHUNK && page.archive.pending.is_empty() && page.archive.unsealed.is_empty());
        assert_eq!((store.len(), chunks.len()), (1234 - RECENT, page.archive.sealed as usize));
    }

    #[test]
    fn given_an_archived_entry_when_a_later_fact_arrives_then_it_changes_there_and_in_the_totals() {
        let (mut page, ids, store, _) = history(120);
        let old = ids[3];
        let g = Uuid::now_v7();
        let fact = Fact::RewardExchanged {
            mission_id: old,
            reward_id: store[&old].reward_id.unwrap(),
            points: 1,
            gift_id: g,
            gift_code: "coffee".into(),
        };
        assert!(page.apply(&fact, store.get(&old), Utc::now()));
        assert_eq!((page.entries.len(), page.entry_count, page.points_exchanged), (RECENT, 120, 1));
        let pending = &page.archive.pending[0];
        assert_eq!((pending.mission_id, pending.reward_status), (old, Some(RewardStatus::Exchanged)));
        // again: nothing changes, the totals do not count it twice
        assert!(!page.apply(&fact, store.get(&old), Utc::now()));
        assert_eq!(page.points_exchanged, 1);
    }

    #[test]
    fn merging_copies_of_an_entry_in_any_order_gives_the_newest_state() {
        let id = Uuid::now_v7();
        let mut old = Entry { mission_id: id, ..Entry::default() };
        old.apply(&achieved(id));
        let mut new = old.clone();
        new.apply(&issued(id));
        let (mut a, mut b) = (old.clone(), new.clone());
        a.merge(&new);
        b.merge(&old);
        assert_eq!((a.clone(), b), (new.clone(), new));
        a.merge(&a.clone());
        assert_eq!(a.reward_status, Some(RewardStatus::Issued));
    }

    /// The page planned from `cursor` with every chunk at hand.
    fn step(page: &MyPage, cursor: Cursor, size: usize, chunks: &HashMap<u64, Vec<Uuid>>) -> Step {
        match plan(page, cursor, size, |n| Some(chunks[&n].clone())) {
            Ok(Planned::Step(step)) => step,
            other => panic!("every chunk is at hand: {other:?}"),
        }
    }

    /// Reads every page of `size` from the start: the mission ids in the order read.
    fn read_all(page: &MyPage, chunks: &HashMap<u64, Vec<Uuid>>, size: usize) -> (Vec<Uuid>, usize) {
        let (mut out, mut cursor, mut pages) = (Vec::new(), Cursor::FIRST, 0);
        loop {
            let step = step(page, cursor, size, chunks);
            pages += 1;
            assert!(step.recent.len() + step.archived.len() <= size);
            out.extend(step.recent.iter().map(|e| e.mission_id));
            out.extend(step.archived);
            match step.next {
                Some(c) => cursor = Cursor::parse(&c.render()).expect("a cursor reads back"),
                None => return (out, pages),
            }
        }
    }

    #[test]
    fn every_entry_is_read_once_newest_first_page_by_page() {
        let (page, ids, _, chunks) = history(317);
        let newest_first: Vec<Uuid> = ids.iter().rev().copied().collect();
        for size in [1, 7, 50, 120, 500] {
            let (read, pages) = read_all(&page, &chunks, size);
            assert_eq!(read, newest_first, "page size {size}");
            assert_eq!(pages, 317usize.div_ceil(size), "page size {size}");
        }
    }

    #[test]
    fn given_new_missions_between_two_pages_then_the_next_page_repeats_nothing() {
        let (mut page, ids, mut store, mut chunks) = history(130);
        let first = step(&page, Cursor::FIRST, 50, &chunks);
        for _ in 0..30 {
            let id = Uuid::now_v7();
            page.apply(&achieved(id), None, Utc::now());
            page.settle();
            write(&mut page, &mut store, &mut chunks);
        }
        let second = step(&page, first.next.unwrap(), 50, &chunks);
        let expected: Vec<Uuid> = ids.iter().rev().skip(50).take(50).copied().collect();
        let mut got: Vec<Uuid> = second.recent.iter().map(|e| e.mission_id).collect();
        got.extend(second.archived);
        assert_eq!(got, expected);
    }

    #[test]
    fn only_cursors_in_their_own_form_parse() {
        let id = Uuid::now_v7();
        for c in [
            Cursor::FIRST,
            Cursor::Recent { before: Some(id) },
            Cursor::Archive { chunk: 3, before: 17, below: None },
            Cursor::Archive { chunk: 0, before: 1, below: Some(id) },
        ] {
            assert_eq!(Cursor::parse(&c.render()), Some(c));
        }
        for bad in ["", "x", "r.", "r.zz", "a.1", "a.-1.2", "a.01.2", "a.1.2.3.4", "r.x.y"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn given_a_cursor_beyond_the_page_s_chunks_when_planning_then_it_is_refused_without_reading_any() {
        let (page, _, _, chunks) = history(317);
        assert_eq!(page.archive.sealed, 5);
        for chunk in [6, 3000, u64::MAX] {
            let mut asked = 0;
            let planned = plan(&page, Cursor::Archive { chunk, before: 0, below: None }, 50, |n| {
                asked += 1;
                chunks.get(&n).cloned()
            });
            assert_eq!(planned, Err(BeyondPage { chunk, sealed: 5 }), "chunk {chunk}");
            assert_eq!(asked, 0, "chunk {chunk}: no chunk read");
        }
        // the tail (chunk `sealed`) and every decided chunk are the page's
        for chunk in 0..=5 {
            assert!(
                plan(&page, Cursor::Archive { chunk, before: 7, below: None }, 50, |n| Some(chunks[&n].clone()))
                    .is_ok()
            );
        }
    }

    #[test]
    fn given_chunks_not_read_yet_when_planning_then_it_stops_at_the_first_and_asks_for_it() {
        let (page, _, _, chunks) = history(317);
        let mut asked = Vec::new();
        let cursor = Cursor::Archive { chunk: 4, before: usize::MAX, below: None };
        let planned = plan(&page, cursor, 500, |n| {
            asked.push(n);
            None
        });
        assert_eq!((planned, asked), (Ok(Planned::Chunk(4)), vec![4]));
        // once read, planning goes on to the next one not read
        let planned = plan(&page, cursor, 500, |n| (n == 4).then(|| chunks[&n].clone()));
        assert_eq!(planned, Ok(Planned::Chunk(3)));
    }

    #[test]
    fn given_a_cursor_that_skips_every_entry_then_each_page_crosses_at_most_chunks_per_page_and_the_reading_ends() {
        let (page, _, _, chunks) = history(1234);
        let size = 50;
        // a cursor below every id: nothing matches, every chunk would be crossed at once
        let mut cursor = Cursor::Recent { before: Some(Uuid::nil()) };
        let mut pages = 0;
        loop {
            let mut asked = 0;
            let planned = plan(&page, cursor, size, |n| {
                asked += 1;
                Some(chunks[&n].clone())
            });
            let Ok(Planned::Step(step)) = planned else { panic!("{planned:?}") };
            pages += 1;
            assert!(step.recent.is_empty() && step.archived.is_empty());
            assert!(asked <= chunks_per_page(size), "{asked} chunks read for one page");
            match step.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        // the tail and 23 chunks, three a page
        assert_eq!(page.archive.sealed, 23);
        assert_eq!(pages, 24usize.div_ceil(chunks_per_page(size)));
    }
}
