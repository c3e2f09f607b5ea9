//! `page_size` / `page_token` of list requests (AIP-158). A token is opaque to clients:
//! base64url of the list it belongs to (e.g. `missions/alice`) and the keyset cursor (the
//! last id returned). It is parsed strictly and only accepted for the same list, so a
//! token cannot be edited into a read of another customer's data; and the cursor only
//! ever narrows a query that is already limited to the caller's own rows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kernel::paging::{Page, PageRequest};
use tonic::Status;
use uuid::Uuid;

const VERSION: &str = "p1";
/// Longer tokens are not ours (a cursor and a customer id fit in far less).
const MAX_TOKEN_LEN: usize = 512;

fn forged() -> Status {
    Status::invalid_argument("page_token: not a token this list returned")
}

/// The page a request asks for, in the list named `scope` (the same for every page of one
/// list: kind and customer, e.g. `missions/alice`).
///
/// # Errors
/// `INVALID_ARGUMENT` naming `page_size` when negative, `page_token` when it is not a
/// token of this list.
pub fn request(page_size: i32, page_token: &str, scope: &str) -> Result<PageRequest, Status> {
    let before = if page_token.is_empty() { None } else { Some(cursor(page_token, scope)?) };
    PageRequest::new(page_size, before).map_err(|e| crate::status::invalid(&e))
}

/// The cursor in a token of the list `scope`.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `page_token`.
pub fn cursor(token: &str, scope: &str) -> Result<Uuid, Status> {
    let raw = raw_cursor(token, scope)?;
    let id = Uuid::try_parse(&raw).map_err(|_| forged())?;
    // Only our own rendering of the id (hyphenated, lowercase).
    if id.hyphenated().to_string() != raw {
        return Err(forged());
    }
    Ok(id)
}

/// The cursor text in a token of the list `scope`, for lists whose cursor is not an id
/// (the caller parses it strictly and answers [`forged_token`] when it does not).
///
/// # Errors
/// `INVALID_ARGUMENT` naming `page_token`.
pub fn raw_cursor(token: &str, scope: &str) -> Result<String, Status> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(forged());
    }
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| forged())?;
    let text = String::from_utf8(raw).map_err(|_| forged())?;
    let mut parts = text.splitn(3, '|');
    let (Some(VERSION), Some(cursor), Some(of)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(forged());
    };
    if of != scope {
        return Err(forged());
    }
    Ok(cursor.to_owned())
}

/// `INVALID_ARGUMENT` naming `page_token`.
pub fn forged_token() -> Status {
    forged()
}

/// The token of the page after the one ending at `next`; empty on the last page.
pub fn token(next: Option<Uuid>, scope: &str) -> String {
    next.map(|id| raw_token(&id.hyphenated().to_string(), scope)).unwrap_or_default()
}

/// A token holding the cursor text `cursor` (no `|` in it) in the list `scope`.
pub fn raw_token(cursor: &str, scope: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{VERSION}|{cursor}|{scope}"))
}

/// The items of a page and its `next_page_token`.
pub fn answer<T, U>(page: Page<T>, scope: &str, f: impl FnMut(T) -> U) -> (Vec<U>, String) {
    let next = token(page.next, scope);
    (page.items.into_iter().map(f).collect(), next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_in_its_own_list_only() {
        let id = Uuid::now_v7();
        let t = token(Some(id), "missions/alice");
        assert_eq!(cursor(&t, "missions/alice").unwrap(), id);
        for other in ["missions/bob", "rewards/alice", "missions/alice2"] {
            let e = cursor(&t, other).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().starts_with("page_token"), "{}", e.message());
        }
        assert_eq!(token(None, "missions/alice"), "");
    }

    #[test]
    fn forged_tokens_are_refused_naming_page_token() {
        let id = Uuid::now_v7();
        let upper = URL_SAFE_NO_PAD.encode(format!("p1|{}|missions/a", id.hyphenated().to_string().to_uppercase()));
        let tampered = URL_SAFE_NO_PAD.encode(format!("p1|{}|missions/a|x", id.hyphenated()));
        for t in ["x", "%%%", &URL_SAFE_NO_PAD.encode("p1|not-a-uuid|missions/a"), &upper, &"A".repeat(600), &tampered]
        {
            let e = request(10, t, "missions/a").unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{t}");
            assert!(e.message().starts_with("page_token"), "{}", e.message());
        }
        let e = request(-1, "", "missions/a").unwrap_err();
        assert!(e.message().starts_with("page_size"), "{}", e.message());
        assert_eq!(request(0, "", "missions/a").unwrap(), PageRequest::default());
    }
}
