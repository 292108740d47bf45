//! Wire codecs: the AWS query protocol (form in, XML out) and rest-json.
//! Pure functions over bytes and strings; no service logic.

pub(crate) mod model;
#[rustfmt::skip]
mod model_table;
pub mod query;
pub mod restjson;
pub mod xml;
