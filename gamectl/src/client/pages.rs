//! `gamectl` commands of what a player reads: my page (once or watched), notifications;
//! and rebuilding my page's view (an admin's).

use std::time::Duration;

use contracts::pb::{mypage, notification};
use serde_json::json;

use super::{Conn, Failure, emit, emit_list, paged, show_page};
use crate::{cli, output};

pub(super) async fn notifications(
    conn: &Conn<'_>,
    customer_id: Option<String>,
    paging: cli::Paging,
) -> Result<(), Failure> {
    let global = conn.global;
    let customer_id = conn.customer(customer_id)?;
    let c = notification::v1::notification_service_client::NotificationServiceClient::new(
        conn.connect("notification").await?,
    );
    let list = paged(&paging, |page_size, page_token| {
        let (mut c, customer_id) = (c.clone(), customer_id.clone());
        async move {
            let req = notification::v1::ListNotificationsRequest { customer_id, page_size, page_token };
            let r = c.list_notifications(req).await?.into_inner();
            Ok((r.notifications, r.next_page_token))
        }
    })
    .await?;
    emit_list(global, "notifications", &list, output::notification_json, output::notifications_text);
    Ok(())
}

pub(super) async fn mypage(conn: &Conn<'_>, customer_id: Option<String>, paging: cli::Paging) -> Result<(), Failure> {
    let global = conn.global;
    let customer_id = conn.customer(customer_id)?;
    let c = mypage::v1::my_page_service_client::MyPageServiceClient::new(conn.connect("mypage").await?);
    let (pages, next) = paged(&paging, |page_size, page_token| {
        let (mut c, customer_id) = (c.clone(), customer_id.clone());
        async move {
            let req = mypage::v1::GetMyPageRequest { customer_id, page_size, page_token };
            let r = c.get_my_page(req).await?.into_inner();
            Ok((vec![r.page.unwrap_or_default()], r.next_page_token))
        }
    })
    .await?;
    let page = merged(pages);
    emit(
        global,
        || {
            let mut v = output::wrap("page", Some(output::page_json(&page)));
            v["nextPageToken"] = json!(next);
            v
        },
        || output::with_next_page(output::page_text(&page), &next),
    );
    Ok(())
}

/// The totals of the first page read and the entries of every page, newest first (as
/// every other list here): mission ids are UUIDv7, ordered by time.
fn merged(pages: Vec<mypage::v1::MyPage>) -> mypage::v1::MyPage {
    let mut page = pages.first().cloned().unwrap_or_default();
    page.entries = pages.into_iter().flat_map(|p| p.entries).collect();
    page.entries.sort_by(|a, b| b.mission_id.cmp(&a.mission_id));
    page
}

pub(super) async fn watch(conn: &Conn<'_>, customer_id: Option<String>) -> Result<(), Failure> {
    let global = conn.global;
    let customer_id = conn.customer(customer_id)?;
    let mut c = mypage::v1::my_page_service_client::MyPageServiceClient::new(conn.connect("mypage").await?);
    let mut stream = c.watch_my_page(mypage::v1::WatchMyPageRequest { customer_id }).await?.into_inner();
    loop {
        tokio::select! {
            msg = stream.message() => match msg? {
                Some(r) => show_page(global, r.page.as_ref(), true),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}

/// How long `rebuild` waits for the view to be rebuilt.
const REBUILD_DEADLINE: Duration = Duration::from_secs(30 * 60);

pub(super) async fn rebuild(conn: &Conn<'_>, args: cli::RebuildArgs) -> Result<(), Failure> {
    let mut c = mypage::v1::my_page_admin_service_client::MyPageAdminServiceClient::new(conn.connect("mypage").await?);
    let mut req = tonic::Request::new(mypage::v1::RebuildMyPageRequest { allow_partial: args.allow_partial });
    // A long history takes minutes: the gateway passes the deadline on.
    req.set_timeout(REBUILD_DEADLINE);
    let r = c.rebuild_my_page(req).await?.into_inner();
    crate::rebuild::print(conn.global, &args.view, &r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_read_are_one_page_with_the_newest_entry_first() {
        let entry = |id: &str| mypage::v1::Entry { mission_id: id.into(), ..Default::default() };
        let first = mypage::v1::MyPage { entries: vec![entry("0193-b"), entry("0193-c")], ..Default::default() };
        let older = mypage::v1::MyPage { entries: vec![entry("0193-a")], ..Default::default() };
        let ids: Vec<String> = merged(vec![first, older]).entries.into_iter().map(|e| e.mission_id).collect();
        assert_eq!(ids, ["0193-c", "0193-b", "0193-a"]);
    }
}
