//! One module per Kafka API: versioned encode and decode of its request and
//! response bodies, plus the headers and framing they share.
//!
//! Each module names its `API_KEY`, the `MIN_VERSION..=MAX_VERSION` we send,
//! which versions are flexible, and which header versions go with them.

pub mod api_versions;
pub mod header;
pub mod metadata;
pub mod produce;

/// The range of versions we can send for `api_key`, if we send it at all.
pub fn supported_versions(api_key: i16) -> Option<(i16, i16)> {
    match api_key {
        produce::API_KEY => Some((produce::MIN_VERSION, produce::MAX_VERSION)),
        metadata::API_KEY => Some((metadata::MIN_VERSION, metadata::MAX_VERSION)),
        api_versions::API_KEY => Some((api_versions::MIN_VERSION, api_versions::MAX_VERSION)),
        _ => None,
    }
}

/// The response header version for `api_key` at `version`.
pub fn response_header_version(api_key: i16, version: i16) -> i16 {
    match api_key {
        produce::API_KEY => produce::response_header_version(version),
        metadata::API_KEY => metadata::response_header_version(version),
        _ => api_versions::response_header_version(version),
    }
}

/// The API's name as Kafka spells it, for errors and logs.
pub fn api_name(api_key: i16) -> &'static str {
    match api_key {
        produce::API_KEY => "Produce",
        metadata::API_KEY => "Metadata",
        api_versions::API_KEY => "ApiVersions",
        _ => "an unknown API",
    }
}
