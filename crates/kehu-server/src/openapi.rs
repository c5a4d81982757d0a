//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the wire types. Served at `/api/openapi.json`.

use crate::api::{
    anomalies, audit, campaigns, classes, customers, dto, duplicates, imports, intake, meta,
    privacy, records, reports, schemes, segments, session, tags, tasks, users,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "kehu API", description = "kehu 客户分类与关系管理 — JSON API. Money is integer fen; dates are YYYY-MM-DD; errors are RFC 9457 problem+json in Chinese or English by Accept-Language."),
    paths(
        session::login, session::current, session::logout,
        customers::list, customers::create, customers::read, customers::update, customers::delete,
        records::create_contact, records::read_contact, records::update_contact, records::delete_contact, records::list_contacts,
        records::create_order, records::read_order, records::update_order, records::delete_order, records::list_orders,
        records::create_interaction, records::read_interaction, records::update_interaction, records::delete_interaction, records::list_interactions,
        meta::list_custom_fields, meta::read_custom_field, meta::create_custom_field, meta::update_custom_field, meta::delete_custom_field,
        meta::list_industries, meta::set_industries, meta::list_roles, meta::set_field_rights, meta::set_grants, meta::create_role, meta::delete_role,
        users::list, users::create, users::read, users::update, users::delete, users::set_password,
        users::list_tokens, users::create_token, users::revoke_token,
        classes::customer_classes, classes::class_changes, classes::explanations,
        classes::set_override, classes::lift_override, classes::overrides,
        schemes::list, schemes::read, schemes::read_version, schemes::list_versions, schemes::create_version,
        schemes::edit_version, schemes::simulate, schemes::take_step,
        tags::list, tags::read, tags::create, tags::update, tags::retire, tags::restore, tags::merge, tags::history,
        tags::customer_tags, tags::customer_tag_history, tags::assign, tags::unassign, tags::settings, tags::set_settings, tags::settings_history,
        tags::apply, tags::proposals, tags::confirm, tags::reject, tags::review,
        segments::results, segments::list, segments::create, segments::read, segments::update, segments::delete, segments::customers, segments::export,
        imports::upload, imports::list, imports::read, imports::problems_csv, imports::check_again, imports::apply, imports::undo,
        imports::list_mappings, imports::save_mapping, imports::delete_mapping,
        intake::list_forms, intake::create_form, intake::update_form, intake::submit, intake::list_leads, intake::accept, intake::reject,
        audit::list, audit::verify,
        privacy::search, privacy::export, privacy::erase, privacy::consents, privacy::record, privacy::withdraw, privacy::retention, privacy::set_retention,
        anomalies::list, anomalies::run, anomalies::calendar, anomalies::set_calendar,
        tasks::strategies, tasks::save_strategy, tasks::delete_strategy, tasks::list, tasks::create, tasks::read, tasks::close,
        tasks::generate, tasks::reassign, tasks::board, tasks::sla, tasks::follow_ups, tasks::notifications, tasks::mark_read,
        tasks::jobs, tasks::run_job, tasks::set_sales_level, tasks::create_for_segment,
        reports::predictions, reports::classification, reports::moved_customers,
        reports::strategy, reports::strategy_customers,
        reports::cross_sell, reports::cross_sell_customers, reports::customer_cross_sell, reports::dashboard,
        reports::schedules, reports::create_schedule, reports::stop_schedule, reports::stored_report_file,
        tasks::deliveries, tasks::create_webhook, tasks::stop_webhook, tasks::set_email,
        campaigns::list, campaigns::create, campaigns::read, campaigns::touch, campaigns::report, campaigns::customers,
        duplicates::list, duplicates::scan, duplicates::read, duplicates::reject, duplicates::merge, duplicates::read_merge, duplicates::undo,
        duplicates::contact_pairs, duplicates::contact_pair, duplicates::reject_contact_pair,
        duplicates::merge_contacts, duplicates::read_contact_merge, duplicates::undo_contact_merge,
    ),
    components(schemas(dto::Problem)),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("token from `kehu token create NAME`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "kehu_session",
                "from POST /api/v1/session; unsafe methods also need X-CSRF-Token",
            ))),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
