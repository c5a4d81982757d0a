//! kehu-core: the domain of kehu — types, validation, normalization,
//! permissions, list queries. No I/O, no async, no wire or SQL types.
#![deny(clippy::unwrap_used)]

pub mod anomaly;
pub mod audit;
pub mod calendar;
pub mod classify;
pub mod contact;
pub mod custom_field;
pub mod customer;
pub mod date;
pub mod dedupe;
pub mod demo;
pub mod demo_tags;
pub mod error;
pub mod export;
pub mod expr;
pub mod ident;
pub mod import;
pub mod import_mapping;
pub mod industry;
pub mod intake;
pub mod interaction;
pub mod merge;
pub mod money;
pub mod order;
pub mod query;
pub mod region;
pub mod role;
pub mod segment;
pub mod tag_stats;
pub mod tags;
pub mod text;

pub use error::{FieldError, Lang, Reason, ValidationErrors};
pub use money::Fen;
