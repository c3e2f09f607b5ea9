//! `gamectl` commands of the mission service: achieve, look up, list, the catalog.

use contracts::pb::mission;

use super::{Conn, Failure, emit, emit_list, paged, show_mission};
use crate::{cli, output};

pub(super) async fn achieve(conn: &Conn<'_>, args: Vec<String>, request_id: Option<String>) -> Result<(), Failure> {
    let global = conn.global;
    let (customer_id, rest) = cli::optional_customer(args, 1);
    let customer_id = conn.customer(customer_id)?;
    let [mission_code]: [String; 1] =
        rest.try_into().map_err(|_| Failure::Token("achieve: [CUSTOMER_ID] MISSION_CODE".into()))?;
    let mut c = mission::v1::mission_service_client::MissionServiceClient::new(conn.connect("mission").await?);
    let r = c
        .achieve_mission(mission::v1::AchieveMissionRequest {
            customer_id,
            mission_code,
            request_id: request_id.unwrap_or_default(),
        })
        .await?
        .into_inner();
    show_mission(global, r.mission.as_ref());
    Ok(())
}

pub(super) async fn mission(conn: &Conn<'_>, mission_id: String) -> Result<(), Failure> {
    let global = conn.global;
    let mut c = mission::v1::mission_service_client::MissionServiceClient::new(conn.connect("mission").await?);
    let r = c.get_mission(mission::v1::GetMissionRequest { mission_id }).await?.into_inner();
    show_mission(global, r.mission.as_ref());
    Ok(())
}

pub(super) async fn missions(conn: &Conn<'_>, customer_id: Option<String>, paging: cli::Paging) -> Result<(), Failure> {
    let global = conn.global;
    let customer_id = conn.customer(customer_id)?;
    let c = mission::v1::mission_service_client::MissionServiceClient::new(conn.connect("mission").await?);
    let list = paged(&paging, |page_size, page_token| {
        let (mut c, customer_id) = (c.clone(), customer_id.clone());
        async move {
            let r = c
                .list_missions(mission::v1::ListMissionsRequest { customer_id, page_size, page_token })
                .await?
                .into_inner();
            Ok((r.missions, r.next_page_token))
        }
    })
    .await?;
    emit_list(global, "missions", &list, output::mission_json, output::missions_text);
    Ok(())
}

pub(super) async fn catalog(conn: &Conn<'_>, customer_id: Option<String>) -> Result<(), Failure> {
    let global = conn.global;
    let mut c = mission::v1::mission_service_client::MissionServiceClient::new(conn.connect("mission").await?);
    let r = c.list_catalog(mission::v1::ListCatalogRequest {}).await?.into_inner();
    // Where each mission stands: for the customer named, else for the player
    // logged in (a game server's or an operator's own token has no missions).
    let customer = match customer_id {
        Some(named) => Some(named),
        None => conn
            .claims
            .as_ref()
            .filter(|c| matches!(c.role.as_str(), "" | "player" | "customer"))
            .map(|c| c.sub.clone()),
    };
    let availability = match customer {
        Some(customer_id) => {
            Some(c.get_availability(mission::v1::GetAvailabilityRequest { customer_id }).await?.into_inner())
        }
        None => None,
    };
    emit(
        global,
        || output::catalog_json(&r, availability.as_ref()),
        || output::catalog_text(&r, availability.as_ref()),
    );
    Ok(())
}
