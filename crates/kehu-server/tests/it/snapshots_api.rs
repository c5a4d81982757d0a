//! Snapshots of the API surface and of a localized problem: a change to
//! either shows up in review as a snapshot diff.

use kehu_core::{Lang, Reason, ValidationErrors};
use kehu_server::error::ApiError;

#[test]
fn openapi_operations() {
    let doc = serde_json::to_value(kehu_server::openapi::document()).expect("openapi json");
    let mut ops: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            ops.push(format!(
                "{} {path} [{}]",
                method.to_uppercase(),
                op["tags"][0].as_str().unwrap_or("")
            ));
        }
    }
    ops.sort();
    insta::assert_snapshot!(ops.join("\n"));
}

#[test]
fn validation_problem_in_both_languages() {
    let err = ApiError::Validation(ValidationErrors(vec![
        kehu_core::FieldError::new("uscc", Reason::UsccCheck { expected: '3' }),
        kehu_core::FieldError::new("declared_annual_purchase_fen", Reason::AmountNegative),
    ]));
    insta::assert_json_snapshot!("problem_zh", err.problem(Lang::Zh));
    insta::assert_json_snapshot!("problem_en", err.problem(Lang::En));
}
