//! The read side the model serves so that a consumer can read its logs
//! back: Fetch (v4-12, full fetches only: no KIP-227 sessions) and
//! ListOffsets (v1-7), with the leader and isolation rules a Kafka leader
//! applies.
//!
//! Batches are served as the producer sent them with their base offset
//! in place (`partition.rs` keeps the bytes), so a consumer checks the
//! producer's own CRCs. A `read_committed` fetch stops at the last stable
//! offset and lists the aborted transactions it overlaps (KIP-98).

use std::time::Duration;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, ProducerId,
};

use super::model::Model;
use super::Api;
use crate::protocol::ErrorCode;

/// The longest a Fetch with nothing to return is held (its `max_wait_ms`,
/// at most this).
const MAX_FETCH_WAIT: Duration = Duration::from_secs(5);

/// ListOffsets' special timestamps.
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;

impl Model {
    /// The partition's leader check: `Ok` if `broker` leads it.
    fn check_leader(&self, broker: i32, topic: &str, partition: i32) -> Result<(), ErrorCode> {
        let p = self
            .partition(topic, partition)
            .map_err(|_| ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        if p.leader != broker {
            return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        }
        Ok(())
    }

    /// A Fetch: the response, and how long to hold it (the request's
    /// `max_wait_ms` when nothing is returned, zero otherwise).
    pub(super) fn fetch(
        &mut self,
        broker: i32,
        version: i16,
        req: FetchRequest,
        forced: Option<ErrorCode>,
    ) -> (FetchResponse, Duration) {
        let read_committed = req.isolation_level == 1;
        let mut budget = usize::try_from(req.max_bytes).unwrap_or(0);
        let mut any = false;
        let mut r = FetchResponse::default();
        for t in &req.topics {
            let name = t.topic.0.to_string();
            let mut tr = FetchableTopicResponse::default();
            tr.topic = t.topic.clone();
            for fp in &t.partitions {
                let mut pd = PartitionData::default();
                pd.partition_index = fp.partition;
                let result = match forced {
                    Some(code) => Err(code),
                    None => self
                        .check_leader(broker, &name, fp.partition)
                        .and_then(|()| {
                            let log = &self.partition(&name, fp.partition).expect("checked").log;
                            let max = usize::try_from(fp.partition_max_bytes)
                                .unwrap_or(0)
                                .min(budget);
                            log.fetch(fp.fetch_offset, max, read_committed)
                                .map(|f| (f, log.end_offset(), log.last_stable_offset()))
                                .ok_or(ErrorCode::OFFSET_OUT_OF_RANGE)
                        }),
                };
                match result {
                    Ok((fetched, end, lso)) => {
                        pd.high_watermark = end;
                        pd.last_stable_offset = lso;
                        if version >= 5 {
                            pd.log_start_offset = 0;
                        }
                        if read_committed {
                            pd.aborted_transactions = Some(
                                fetched
                                    .aborted
                                    .iter()
                                    .map(|(pid, first)| {
                                        let mut a = AbortedTransaction::default();
                                        a.producer_id = ProducerId(*pid);
                                        a.first_offset = *first;
                                        a
                                    })
                                    .collect(),
                            );
                        }
                        budget = budget.saturating_sub(fetched.records.len());
                        any |= !fetched.records.is_empty();
                        pd.records = Some(fetched.records);
                    }
                    Err(code) => {
                        pd.error_code = code.0;
                        pd.high_watermark = -1;
                        pd.last_stable_offset = -1;
                        if version >= 5 {
                            pd.log_start_offset = -1;
                        }
                        pd.records = Some(Default::default());
                        if forced.is_none() {
                            self.count_error(Api::Fetch, code);
                        }
                    }
                }
                tr.partitions.push(pd);
            }
            r.responses.push(tr);
        }
        let wait = if any {
            Duration::ZERO
        } else {
            Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_FETCH_WAIT)
        };
        (r, wait)
    }

    /// ListOffsets: the earliest (0), the latest (the end, or the last
    /// stable offset at read_committed), or the first offset at or after a
    /// timestamp.
    pub(super) fn list_offsets(
        &mut self,
        broker: i32,
        version: i16,
        req: ListOffsetsRequest,
        forced: Option<ErrorCode>,
    ) -> ListOffsetsResponse {
        let read_committed = req.isolation_level == 1;
        let mut r = ListOffsetsResponse::default();
        for t in &req.topics {
            let name = t.name.0.to_string();
            let mut tr = ListOffsetsTopicResponse::default();
            tr.name = t.name.clone();
            for lp in &t.partitions {
                let mut pr = ListOffsetsPartitionResponse::default();
                pr.partition_index = lp.partition_index;
                let result = match forced {
                    Some(code) => Err(code),
                    None => self
                        .check_leader(broker, &name, lp.partition_index)
                        .map(|()| {
                            let p = self.partition(&name, lp.partition_index).expect("checked");
                            let offset = match lp.timestamp {
                                EARLIEST => 0,
                                LATEST if read_committed => p.log.last_stable_offset(),
                                LATEST => p.log.end_offset(),
                                ts => p.log.offset_for_timestamp(ts),
                            };
                            (offset, p.leader_epoch)
                        }),
                };
                match result {
                    Ok((offset, epoch)) => {
                        pr.offset = offset;
                        pr.timestamp = -1;
                        if version >= 4 {
                            pr.leader_epoch = epoch;
                        }
                    }
                    Err(code) => {
                        pr.error_code = code.0;
                        pr.offset = -1;
                        pr.timestamp = -1;
                        if forced.is_none() {
                            self.count_error(Api::ListOffsets, code);
                        }
                    }
                }
                tr.partitions.push(pr);
            }
            r.topics.push(tr);
        }
        r
    }
}
