//! Lists that stay small (AIP-158): a page of at most [`MAX_PAGE_SIZE`] items, newest
//! first, and where the next page starts. The position is a keyset cursor (the id of the
//! last item returned, our ids being UUIDv7: time-ordered), so a page costs the same at
//! the end of a long history as at its start, and items added meanwhile neither repeat
//! nor shift a page.

use uuid::Uuid;

use crate::ValidationError;

/// Items per page when the client does not say.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The most items a page holds; a larger `page_size` is lowered to it (AIP-158).
pub const MAX_PAGE_SIZE: usize = 500;

/// Which page to read: at most `size` items with ids below `before` (none: the newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub size: usize,
    pub before: Option<Uuid>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { size: DEFAULT_PAGE_SIZE, before: None }
    }
}

impl PageRequest {
    /// A page of `page_size` items (0: [`DEFAULT_PAGE_SIZE`]; above [`MAX_PAGE_SIZE`]: the
    /// maximum) starting below `before`.
    ///
    /// # Errors
    /// `page_size` when negative.
    pub fn new(page_size: i32, before: Option<Uuid>) -> Result<Self, ValidationError> {
        let size = match usize::try_from(page_size) {
            Err(_) => return Err(ValidationError::new("page_size", "must not be negative")),
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n.min(MAX_PAGE_SIZE),
        };
        Ok(Self { size, before })
    }

    /// How many rows a store reads: one more than the page, to know whether more follow.
    pub fn probe(&self) -> i64 {
        i64::try_from(self.size).unwrap_or(i64::MAX).saturating_add(1)
    }
}

/// One page of items, newest first; `next` is where the next page starts (the id of the
/// last item here), `None` on the last page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Uuid>,
}

impl<T> Page<T> {
    /// The page from up to `page.probe()` items read newest first: the extra item, when
    /// there is one, only says that another page follows.
    pub fn from_probe(mut items: Vec<T>, page: PageRequest, id: impl Fn(&T) -> Uuid) -> Self {
        let more = items.len() > page.size;
        items.truncate(page.size);
        let next = if more { items.last().map(id) } else { None };
        Self { items, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next: self.next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_no_size_then_the_default_and_given_a_huge_one_then_the_maximum() {
        assert_eq!(PageRequest::new(0, None).unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(PageRequest::new(7, None).unwrap().size, 7);
        assert_eq!(PageRequest::new(i32::MAX, None).unwrap().size, MAX_PAGE_SIZE);
    }

    #[test]
    fn a_negative_page_size_is_refused_naming_the_field() {
        assert_eq!(PageRequest::new(-1, None).unwrap_err().field, "page_size");
    }

    #[test]
    fn given_one_item_more_than_the_page_when_paged_then_next_is_the_last_item_kept() {
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).rev().collect();
        let page = PageRequest::new(3, None).unwrap();
        let p = Page::from_probe(ids.clone(), page, |u| *u);
        assert_eq!((p.items.as_slice(), p.next), (&ids[..3], Some(ids[2])));
        let last = Page::from_probe(ids[..3].to_vec(), page, |u| *u);
        assert_eq!(last.next, None, "no item beyond the page: the last page");
    }
}
