//! `gamectl` commands of the gift service: gifts, the gift catalog, using a gift.

use contracts::pb::gift;
use serde_json::json;

use super::{Conn, Failure, emit, emit_list, gift_client, paged, show_gift};
use crate::{cli, output};

pub(super) async fn gifts(conn: &Conn<'_>, customer_id: Option<String>, paging: cli::Paging) -> Result<(), Failure> {
    let global = conn.global;
    let customer_id = conn.customer(customer_id)?;
    let c = gift_client(conn).await?;
    let list = paged(&paging, |page_size, page_token| {
        let (mut c, customer_id) = (c.clone(), customer_id.clone());
        async move {
            let r = c.list_gifts(gift::v1::ListGiftsRequest { customer_id, page_size, page_token }).await?.into_inner();
            Ok((r.gifts, r.next_page_token))
        }
    })
    .await?;
    emit_list(global, "gifts", &list, output::gift_json, output::gifts_text);
    Ok(())
}

pub(super) async fn gift(conn: &Conn<'_>, gift_id: String) -> Result<(), Failure> {
    let global = conn.global;
    let r = gift_client(conn).await?.get_gift(gift::v1::GetGiftRequest { gift_id }).await?.into_inner();
    show_gift(global, r.gift.as_ref());
    Ok(())
}

pub(super) async fn catalog(conn: &Conn<'_>) -> Result<(), Failure> {
    let global = conn.global;
    let r = gift_client(conn).await?.list_catalog(gift::v1::ListCatalogRequest {}).await?.into_inner();
    emit(
        global,
        || json!({"gifts": r.gifts.iter().map(output::catalog_gift_json).collect::<Vec<_>>()}),
        || output::gift_catalog_text(&r.gifts),
    );
    Ok(())
}

pub(super) async fn use_gift(conn: &Conn<'_>, gift_id: String, customer_id: Option<String>) -> Result<(), Failure> {
    let global = conn.global;
    let r = gift_client(conn)
        .await?
        .use_gift(gift::v1::UseGiftRequest { gift_id, customer_id: customer_id.unwrap_or_default() })
        .await?
        .into_inner();
    show_gift(global, r.gift.as_ref());
    Ok(())
}
