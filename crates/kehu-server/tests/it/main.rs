//! Integration tests: the real server on a random port, a fresh database per
//! test, on SQLite and on PostgreSQL (`both_backends!`), spoken to over HTTP.

mod helpers;

mod api_anomalies;
mod api_audit;
mod api_audit_actions;
mod api_auth;
mod api_bad_input;
mod api_campaigns;
mod api_classes;
mod api_contact_duplicates;
mod api_cross_sell;
mod api_customers;
mod api_dashboard;
mod api_deliveries;
mod api_duplicates;
mod api_field_rights;
mod api_idor;
mod api_imports;
mod api_intake;
mod api_overrides;
mod api_predictions;
mod api_privacy;
mod api_records;
mod api_reports;
mod api_roles;
mod api_schedules;
mod api_schemes;
mod api_tags;
mod api_tasks;
mod browser;
mod mail_tls;
mod resident;
mod snapshots_api;
mod task_batches;
mod ui_forms;
