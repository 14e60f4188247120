//! One module per Kafka API: versioned encode and decode of its request and
//! response bodies, plus the headers and framing they share.
//!
//! Each module states its [`api::Api`] row (key, name, the versions we send,
//! the first flexible one); [`api::APIS`] lists them, and header versions
//! follow from the row.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod api;
pub mod api_versions;
pub mod end_txn;
pub mod find_coordinator;
pub mod header;
pub mod init_producer_id;
pub mod metadata;
pub mod partition_errors;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
#[cfg(test)]
mod testing;
pub mod txn_offset_commit;
