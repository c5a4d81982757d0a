//! Contacts, orders and interactions: created under a customer
//! (`POST /customers/{id}/…`), then read, patched and deleted by their own id.
//! Every access is checked against the parent customer's owner and team.

use super::customers::customer_for;
use super::dto::{
    ContactOut, ContactWrite, InteractionOut, InteractionWrite, OrderOut, OrderWrite, Page,
};
use super::{
    conflict_status, expected_version, merge_patch, split_version, with_etag, ApiJson, QueryPairs,
};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::privacy::{self, Personal};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kehu_core::contact::{ContactData, ContactInput};
use kehu_core::interaction::{InteractionData, InteractionInput};
use kehu_core::order::{OrderData, OrderInput};
use kehu_core::query::{parse_list_query, CONTACT_FIELDS, INTERACTION_FIELDS, ORDER_FIELDS};
use kehu_core::role::Permission;
use kehu_core::ValidationErrors;
use serde_json::json;

/// Who may write an interaction of this kind: 客服 logs service tickets and
/// complaints only; sales roles any kind on their customers.
fn interaction_permission(d: &InteractionData, user: &CurrentUser) -> Permission {
    if d.kind.is_ticket() && user.actor.grants.has(Permission::ServiceRecordWrite) {
        Permission::ServiceRecordWrite
    } else {
        Permission::InteractionWrite
    }
}

fn created<T: serde::Serialize>(version: i64, body: T) -> Response {
    let mut r = with_etag(version, body);
    *r.status_mut() = StatusCode::CREATED;
    r
}

/// Validates the input and picks the permission the write needs.
trait RecordInput: Sized {
    type Data;
    fn check(
        self,
        today: chrono::NaiveDate,
        user: &CurrentUser,
    ) -> Result<(Self::Data, Permission), ValidationErrors>;
}

impl RecordInput for ContactInput {
    type Data = kehu_core::contact::ContactData;
    fn check(
        self,
        _: chrono::NaiveDate,
        _: &CurrentUser,
    ) -> Result<(Self::Data, Permission), ValidationErrors> {
        Ok((self.validate()?, Permission::RecordWrite))
    }
}

impl RecordInput for OrderInput {
    type Data = kehu_core::order::OrderData;
    fn check(
        self,
        today: chrono::NaiveDate,
        _: &CurrentUser,
    ) -> Result<(Self::Data, Permission), ValidationErrors> {
        Ok((self.validate(today)?, Permission::RecordWrite))
    }
}

impl RecordInput for InteractionInput {
    type Data = InteractionData;
    fn check(
        self,
        today: chrono::NaiveDate,
        user: &CurrentUser,
    ) -> Result<(Self::Data, Permission), ValidationErrors> {
        let d = self.validate(today)?;
        let p = interaction_permission(&d, user);
        Ok((d, p))
    }
}

/// `create`: a new record of the kind written with what it sets off for
/// its customer; `after`: what a change or removal sets off (orders and
/// interactions re-evaluate it; contacts refresh its duplicate contact
/// pairs).
macro_rules! record_api {
    (
        tag: $tag:literal, after: $after:path, write: $write:ty, out: $out:ty, input: $input:ty, fields: $fields:expr,
        get: $get:ident, create: $create:path, update: $update:ident, delete: $delete:ident, list: $list:ident, guard: $guard:path,
        paths: { create: $p_create:literal, item: $p_item:literal, list: $p_list:literal },
        handlers: { create: $h_create:ident, read: $h_read:ident, patch: $h_patch:ident, delete: $h_delete:ident, list: $h_list:ident }
    ) => {
        #[utoipa::path(post, path = $p_create, tag = $tag, params(("id" = i64, Path, description = "customer id")), request_body = $write,
            responses((status = 201, body = $out), (status = 404), (status = 422, content_type = "application/problem+json")))]
        pub async fn $h_create(State(state): State<AppState>, user: CurrentUser, Path(customer_id): Path<i64>, ApiJson(body): ApiJson<$write>) -> Result<Response, ApiError> {
            let (data, perm) = <$input>::from(body).check(state.store.today(), &user)?;
            customer_for(&state, &user, customer_id, perm).await?;
            $guard(&user, None, &data)?;
            let r = $create(&state, customer_id, &data, &user).await?;
            let mut out = <$out>::from(r);
            state.audit(Some(&user), &format!("{}.create", <$out>::KIND), format!("{}:{}", <$out>::KIND, out.id), privacy::for_log(&out));
            out.protect(&user.actor.fields, false);
            Ok(created(out.version, out))
        }

        /// `reveal=true`: personal fields in clear where the role allows (audited).
        #[utoipa::path(get, path = $p_item, tag = $tag, params(("id" = i64, Path), ("reveal" = Option<bool>, Query)),
            responses((status = 200, body = $out), (status = 403), (status = 404)))]
        pub async fn $h_read(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>, mut q: QueryPairs) -> Result<Response, ApiError> {
            let r = state.store.$get(id).await?;
            customer_for(&state, &user, r.customer_id, Permission::CustomerRead).await?;
            let reveal = privacy::reveal_param::<$out>(&user, &mut q)?;
            let mut out = [<$out>::from(r)];
            privacy::protect_all(&state, &user, &mut out, reveal);
            let [out] = out;
            Ok(with_etag(out.version, out))
        }

        #[utoipa::path(patch, path = $p_item, tag = $tag, params(("id" = i64, Path)), request_body = $write,
            responses((status = 200, body = $out), (status = 404), (status = 409), (status = 412), (status = 428), (status = 422, content_type = "application/problem+json")))]
        pub async fn $h_patch(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>, headers: HeaderMap, ApiJson(mut patch): ApiJson<serde_json::Value>) -> Result<Response, ApiError> {
            let current = state.store.$get(id).await?;
            customer_for(&state, &user, current.customer_id, Permission::CustomerRead).await?;
            let expected = expected_version(&headers, split_version(&mut patch)?)?;
            let merged: $write = merge_patch(&<$write>::from(&current), patch)?;
            let (data, perm) = <$input>::from(merged).check(state.store.today(), &user)?;
            customer_for(&state, &user, current.customer_id, perm).await?;
            $guard(&user, Some(&current), &data)?;
            let before = <$out>::from(current.clone());
            let r = state.store.$update(id, expected.version, &data).await.map_err(|e| conflict_status(e.into(), &expected))?;
            $after(&state, current.customer_id, &user).await;
            let mut out = <$out>::from(r);
            state.audit(Some(&user), &format!("{}.update", <$out>::KIND), format!("{}:{id}", <$out>::KIND), json!({"changed": privacy::masked_changes(&before, &out)}));
            out.protect(&user.actor.fields, false);
            Ok(with_etag(out.version, out))
        }

        #[utoipa::path(delete, path = $p_item, tag = $tag, params(("id" = i64, Path), ("version" = Option<i64>, Query)),
            responses((status = 204), (status = 404), (status = 412), (status = 428)))]
        pub async fn $h_delete(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>, headers: HeaderMap, mut q: QueryPairs) -> Result<Response, ApiError> {
            let current = state.store.$get(id).await?;
            let (_, perm) = <$input>::from(<$write>::from(&current)).check(state.store.today(), &user).map_err(ApiError::from)?;
            customer_for(&state, &user, current.customer_id, perm).await?;
            let expected = expected_version(&headers, q.take("version").and_then(|v| v.parse().ok()))?;
            state.store.$delete(id, expected.version).await.map_err(|e| conflict_status(e.into(), &expected))?;
            $after(&state, current.customer_id, &user).await;
            state.audit(Some(&user), &format!("{}.delete", <$out>::KIND), format!("{}:{id}", <$out>::KIND), privacy::for_log(&<$out>::from(current)));
            Ok(StatusCode::NO_CONTENT.into_response())
        }

        /// Lists records of customers in the caller's scope; filter e.g. `customer_id=7`;
        /// `reveal=true` as for one record.
        #[utoipa::path(get, path = $p_list, tag = $tag,
            params(("sort" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query), ("customer_id" = Option<i64>, Query), ("reveal" = Option<bool>, Query)),
            responses((status = 200, body = Page<$out>), (status = 403), (status = 422, content_type = "application/problem+json")))]
        pub async fn $h_list(State(state): State<AppState>, user: CurrentUser, mut q: QueryPairs) -> Result<Json<Page<$out>>, ApiError> {
            let scope = user.scope_filter(Permission::CustomerRead)?;
            let reveal = privacy::reveal_param::<$out>(&user, &mut q)?;
            privacy::check_list_query::<$out>(&user, &q.0)?;
            let query = parse_list_query(&q.0, $fields, &[], "-id")?;
            let page = state.store.$list(&query, &scope).await?;
            let mut page = Page::from_store(page, <$out>::from);
            privacy::protect_all(&state, &user, &mut page.items, reveal);
            Ok(Json(page))
        }
    };
}

/// Orders and interactions change what classification reads.
async fn reclassify(state: &AppState, customer_id: i64, user: &CurrentUser) {
    state.after_data_change(customer_id, user.user.id).await;
}

/// A new contact, then its customer's duplicate contact pairs compared again.
async fn create_contact_record(
    state: &AppState,
    customer_id: i64,
    d: &ContactData,
    user: &CurrentUser,
) -> Result<kehu_store::model::Contact, ApiError> {
    let c = state.store.insert_contact(customer_id, d).await?;
    refresh_contact_pairs(state, customer_id, user).await;
    Ok(c)
}

/// A new order, committed with the classes it gives its customer.
async fn create_order_record(
    state: &AppState,
    customer_id: i64,
    d: &OrderData,
    user: &CurrentUser,
) -> Result<kehu_store::model::Order, ApiError> {
    state
        .write_reclassified(customer_id, user.user.id, || {
            state.store.insert_order_open(customer_id, d)
        })
        .await
}

/// A new interaction, committed with the classes it gives its customer.
async fn create_interaction_record(
    state: &AppState,
    customer_id: i64,
    d: &InteractionData,
    user: &CurrentUser,
) -> Result<kehu_store::model::Interaction, ApiError> {
    state
        .write_reclassified(customer_id, user.user.id, || {
            state
                .store
                .insert_interaction_open(customer_id, d, Some(user.user.id))
        })
        .await
}

/// Contacts: their customer's duplicate contact pairs compared again.
async fn refresh_contact_pairs(state: &AppState, customer_id: i64, _: &CurrentUser) {
    crate::contact_duplicates::refresh(state, &[customer_id]).await;
}

/// A contact's personal fields change only with the edit right on each.
fn guard_contact(
    user: &CurrentUser,
    before: Option<&kehu_store::model::Contact>,
    d: &ContactData,
) -> Result<(), ApiError> {
    Ok(privacy::check_contact_write(
        &user.actor.fields,
        before,
        d,
        "",
    )?)
}

/// Orders and interactions hold no personal fields; setting or changing
/// their other fields under rights (an order's amount, …) needs the edit
/// right on each.
fn guard_record<T: Personal, S: privacy::RecordValues, D: privacy::RecordValues>(
    user: &CurrentUser,
    before: Option<&S>,
    d: &D,
) -> Result<(), ApiError> {
    let before = before.map(|b| b as &dyn privacy::RecordValues);
    Ok(privacy::check_record_write(
        &user.actor.fields,
        T::RECORD_FIELDS,
        before,
        d,
        "",
    )?)
}

record_api! {
    tag: "contacts", after: refresh_contact_pairs, write: ContactWrite, out: ContactOut, input: ContactInput, fields: CONTACT_FIELDS,
    get: contact, create: create_contact_record,
    update: update_contact, delete: delete_contact, list: list_contacts, guard: guard_contact,
    paths: { create: "/api/v1/customers/{id}/contacts", item: "/api/v1/contacts/{id}", list: "/api/v1/contacts" },
    handlers: { create: create_contact, read: read_contact, patch: update_contact, delete: delete_contact, list: list_contacts }
}

record_api! {
    tag: "orders", after: reclassify, write: OrderWrite, out: OrderOut, input: OrderInput, fields: ORDER_FIELDS,
    get: order, create: create_order_record,
    update: update_order, delete: delete_order, list: list_orders, guard: guard_record::<OrderOut, kehu_store::model::Order, _>,
    paths: { create: "/api/v1/customers/{id}/orders", item: "/api/v1/orders/{id}", list: "/api/v1/orders" },
    handlers: { create: create_order, read: read_order, patch: update_order, delete: delete_order, list: list_orders }
}

record_api! {
    tag: "interactions", after: reclassify, write: InteractionWrite, out: InteractionOut, input: InteractionInput, fields: INTERACTION_FIELDS,
    get: interaction, create: create_interaction_record,
    update: update_interaction, delete: delete_interaction, list: list_interactions, guard: guard_record::<InteractionOut, kehu_store::model::Interaction, _>,
    paths: { create: "/api/v1/customers/{id}/interactions", item: "/api/v1/interactions/{id}", list: "/api/v1/interactions" },
    handlers: { create: create_interaction, read: read_interaction, patch: update_interaction, delete: delete_interaction, list: list_interactions }
}
