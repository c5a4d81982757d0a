//! Classification: every customer gets exactly one class per scheme, as of
//! a date, with an explanation.
//!
//! - [`spec`]: a scheme as written (JSON): indicators, weighted dimensions
//!   with levels, classes, and mapping rules or score bands.
//! - [`scheme`]: checking a spec (every problem named by its place) and
//!   compiling it; [`scheme::evaluation_order`] orders schemes that read
//!   each other's classes and refuses cycles.
//! - [`metric`], [`facts`], [`value`]: what indicators measure, over what
//!   data, in which integer units.
//! - [`eval`]: values → levels → class, percentile populations, and the
//!   explanation with the nearest change to another class.
//! - [`presets`]: the ten preset schemes of design.md.
//! - [`workflow`]: draft → submitted → approved → published, and who may.
//!
//! Time is explicit: only orders and interactions dated on or before the
//! evaluation date count, so the same data gives the same class for the
//! same date.

pub mod batch;
pub mod digest;
pub mod eval;
pub mod facts;
pub mod metric;
pub mod overrides;
pub mod presets;
pub mod scheme;
pub mod spec;
pub mod table;
pub mod value;
pub mod workflow;

pub use batch::{Binding, SetEvaluator};
pub use digest::DigestReader;
pub use eval::{
    score_text, ClassContext, Decision, Explanation, Fired, Population, PopulationBuilder, Verdict,
};
pub use facts::{Facts, InteractionFact, OrderFact, Rollups};
pub use scheme::{evaluation_order, Catalog, Scheme};
pub use spec::SchemeSpec;
pub use table::MetricTable;

#[cfg(test)]
mod tests;
