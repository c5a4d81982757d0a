//! kehu-core: the domain of kehu — types, validation, normalization,
//! permissions, list queries. No I/O, no async, no wire or SQL types.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
// Table-driven tests spell their case tuples out where they are read.
#![cfg_attr(
    test,
    allow(
        clippy::type_complexity,
        clippy::needless_range_loop,
        clippy::field_reassign_with_default
    )
)]

/// An enum of fixed choices, each with a stable key and a Chinese label;
/// `parse` accepts either.
macro_rules! labelled_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $key:literal / $zh:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn key(self) -> &'static str { match self { $($name::$variant => $key),+ } }
            pub fn label_zh(self) -> &'static str { match self { $($name::$variant => $zh),+ } }
            /// Accepts the key or the Chinese label.
            pub fn parse(raw: &str) -> Result<$name, $crate::error::Reason> {
                let s = $crate::text::clean(raw);
                Self::ALL.iter().copied().find(|v| v.key() == s || v.label_zh() == s)
                    .ok_or_else(|| $crate::error::Reason::UnknownOption { allowed: Self::ALL.iter().map(|v| v.key().to_string()).collect() })
            }
        }
    };
}

pub mod anomaly;
pub mod audit;
pub mod calendar;
pub mod campaign;
pub mod classify;
pub mod contact;
pub mod crosssell;
pub mod custom_field;
pub mod customer;
pub mod date;
pub mod dedupe;
pub mod delivery;
pub mod demo;
pub mod demo_campaigns;
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
pub mod keyring;
pub mod merge;
pub mod money;
pub mod order;
pub mod predict;
pub mod privacy;
pub mod query;
pub mod region;
pub mod report;
pub mod role;
pub mod segment;
pub mod segment_builder;
pub mod strategy;
pub mod tag_stats;
pub mod tags;
pub mod task;
pub mod text;

pub use error::{FieldError, Lang, Reason, ValidationErrors};
pub use money::Fen;
