//! Wire codecs: the AWS query protocol (form in, XML out) and rest-json.
//! Pure functions over bytes and strings; no service logic.

pub mod query;
pub mod restjson;
pub mod xml;
