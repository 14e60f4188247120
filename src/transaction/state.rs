//! The transactional producer's state machine (Java's
//! `TransactionManager.State`), as pure transitions: no lock, thread,
//! socket or clock. [`super::TransactionManager`] holds one [`TxnState`]
//! under its mutex and calls these; the unit tests below walk every
//! transition and every refusal without a broker.
//!
//! ```text
//!                 init             begin              commit / abort
//! Uninitialized -------> Initializing --> Ready <------------------------+
//!                                           |  begin                     |
//!                                           v                            |
//!                                     InTransaction --commit--> Committing
//!                                       |   |                    |      |
//!                        failed send /  |   +------abort-----> Aborting-+
//!                        refused step   v                        ^
//!                                  AbortableError ---abort-------+
//!
//! any state --(fenced, unauthorized, unsupported)--> Fatal (final)
//! ```
//!
//! A timed-out `init`, `commit` or `abort` leaves its state
//! (`Initializing`, `Committing`, `Aborting`) for the retry to resume; that
//! bookkeeping is the manager's ([`super::Pending`]), not a state.

use std::sync::Arc;

use crate::error::{Error, Result};

/// Where the transactional producer is.
#[derive(Debug, Clone)]
pub(crate) enum State {
    /// `init_transactions` has not been called.
    Uninitialized,
    /// InitProducerId is under way.
    Initializing,
    /// Has a producer id; no transaction is open.
    Ready,
    /// `begin_transaction` was called: sends are accepted.
    InTransaction,
    /// `commit_transaction` is flushing, or EndTxn(commit) is under way.
    Committing,
    /// `abort_transaction` is failing queued records, waiting for the ones
    /// in flight, or EndTxn(abort) is under way.
    Aborting,
    /// The open transaction cannot commit; only `abort_transaction` helps.
    AbortableError(Arc<Error>),
    /// Nothing helps; every call fails with this.
    Fatal(Arc<Error>),
}

impl State {
    /// Java's name of the state, for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            State::Uninitialized => "UNINITIALIZED",
            State::Initializing => "INITIALIZING",
            State::Ready => "READY",
            State::InTransaction => "IN_TRANSACTION",
            State::Committing => "COMMITTING_TRANSACTION",
            State::Aborting => "ABORTING_TRANSACTION",
            State::AbortableError(_) => "ABORTABLE_ERROR",
            State::Fatal(_) => "FATAL_ERROR",
        }
    }
}

/// The state and the transactional id its errors name.
#[derive(Debug)]
pub(crate) struct TxnState {
    pub(crate) transactional_id: String,
    pub(crate) state: State,
}

impl TxnState {
    pub(crate) fn new(transactional_id: &str) -> Self {
        TxnState {
            transactional_id: transactional_id.to_owned(),
            state: State::Uninitialized,
        }
    }

    /// The error every call gets once the producer is fatal.
    pub(crate) fn fatal_error(&self, cause: &Arc<Error>) -> Error {
        Error::TransactionFatal {
            transactional_id: self.transactional_id.clone(),
            cause: cause.clone(),
        }
    }

    /// The error commit and send get while the transaction must be aborted.
    pub(crate) fn abortable_error(&self, cause: &Arc<Error>) -> Error {
        Error::TransactionAbortable {
            transactional_id: self.transactional_id.clone(),
            cause: cause.clone(),
        }
    }

    fn refuse(&self, op: &str) -> Error {
        if let State::Fatal(cause) = &self.state {
            return self.fatal_error(cause);
        }
        Error::InvalidOperation(format!(
            "transactional producer {:?}: cannot {op} in state {}",
            self.transactional_id,
            self.state.name()
        ))
    }

    /// `init_transactions`: Uninitialized -> Initializing.
    pub(crate) fn begin_init(&mut self) -> Result<()> {
        match self.state {
            State::Uninitialized => {
                self.state = State::Initializing;
                Ok(())
            }
            State::Fatal(_) => Err(self.refuse("initialize transactions")),
            _ => Err(Error::InvalidOperation(format!(
                "transactional producer {:?}: init_transactions was already called (state {})",
                self.transactional_id,
                self.state.name()
            ))),
        }
    }

    /// InitProducerId answered: Initializing -> Ready.
    pub(crate) fn init_done(&mut self) {
        if matches!(self.state, State::Initializing) {
            self.state = State::Ready;
        }
    }

    /// `begin_transaction`: Ready -> InTransaction (local, as Java's).
    pub(crate) fn begin(&mut self) -> Result<()> {
        match self.state {
            State::Ready => {
                self.state = State::InTransaction;
                Ok(())
            }
            State::Uninitialized | State::Initializing => Err(Error::InvalidOperation(format!(
                "transactional producer {:?}: cannot begin a transaction before completing a \
                 call to init_transactions",
                self.transactional_id
            ))),
            State::InTransaction => Err(Error::InvalidOperation(format!(
                "transactional producer {:?}: a transaction is already open (begin_transaction \
                 was called twice)",
                self.transactional_id
            ))),
            _ => Err(self.refuse("begin a transaction")),
        }
    }

    /// May `send` accept a record now? Only inside a transaction.
    pub(crate) fn check_send(&self) -> Result<()> {
        match &self.state {
            State::InTransaction => Ok(()),
            State::AbortableError(cause) => Err(self.abortable_error(cause)),
            State::Fatal(cause) => Err(self.fatal_error(cause)),
            State::Uninitialized | State::Initializing => Err(Error::InvalidOperation(format!(
                "transactional producer {:?}: cannot perform a 'send' before completing a call \
                 to init_transactions",
                self.transactional_id
            ))),
            State::Ready => Err(Error::InvalidOperation(format!(
                "transactional producer {:?}: cannot send when not in a transaction (call \
                 begin_transaction first)",
                self.transactional_id
            ))),
            _ => Err(self.refuse("send")),
        }
    }

    /// `send_offsets_to_transaction`: only inside a transaction.
    pub(crate) fn check_send_offsets(&self) -> Result<()> {
        match &self.state {
            State::InTransaction => Ok(()),
            State::AbortableError(cause) => Err(self.abortable_error(cause)),
            _ => Err(self.refuse("send offsets to the transaction")),
        }
    }

    /// `commit_transaction`: InTransaction -> Committing. An abortable
    /// error is returned as such (the transaction must be aborted).
    pub(crate) fn begin_commit(&mut self) -> Result<()> {
        match &self.state {
            State::InTransaction => {
                self.state = State::Committing;
                Ok(())
            }
            State::AbortableError(cause) => Err(self.abortable_error(cause)),
            State::Ready => Err(Error::InvalidOperation(format!(
                "transactional producer {:?}: cannot commit: no transaction is open (call \
                 begin_transaction first)",
                self.transactional_id
            ))),
            _ => Err(self.refuse("commit")),
        }
    }

    /// `abort_transaction`: InTransaction or AbortableError -> Aborting.
    pub(crate) fn begin_abort(&mut self) -> Result<()> {
        match &self.state {
            State::InTransaction | State::AbortableError(_) => {
                self.state = State::Aborting;
                Ok(())
            }
            State::Ready => Err(Error::InvalidOperation(format!(
                "transactional producer {:?}: cannot abort: no transaction is open",
                self.transactional_id
            ))),
            _ => Err(self.refuse("abort")),
        }
    }

    /// EndTxn answered: Committing or Aborting -> Ready.
    pub(crate) fn end_done(&mut self) {
        if matches!(self.state, State::Committing | State::Aborting) {
            self.state = State::Ready;
        }
    }

    /// A record of the transaction failed, or a coordinator refused a
    /// step: the transaction can only be aborted. Ignored unless a
    /// transaction is open or committing (an abort fails records itself;
    /// a fatal state stays fatal). Returns true if the state changed.
    pub(crate) fn abortable(&mut self, cause: Error) -> bool {
        match self.state {
            State::InTransaction | State::Committing => {
                self.state = State::AbortableError(Arc::new(cause));
                true
            }
            _ => false,
        }
    }

    /// Fenced, unauthorized, unsupported: final.
    pub(crate) fn fatal(&mut self, cause: Error) {
        if !matches!(self.state, State::Fatal(_)) {
            self.state = State::Fatal(Arc::new(cause));
        }
    }

    /// Batches may be drained in these states: the transaction is open or
    /// committing (commit flushes).
    pub(crate) fn may_drain(&self) -> bool {
        matches!(self.state, State::InTransaction | State::Committing)
    }

    /// The error of a fatal producer, if it is.
    pub(crate) fn fatal_cause(&self) -> Option<Error> {
        match &self.state {
            State::Fatal(cause) => Some(self.fatal_error(cause)),
            _ => None,
        }
    }

    /// The error of an abortable transaction, if it is.
    pub(crate) fn abortable_cause(&self) -> Option<Error> {
        match &self.state {
            State::AbortableError(cause) => Some(self.abortable_error(cause)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn msg(r: Result<()>) -> String {
        match r.unwrap_err() {
            Error::InvalidOperation(m) => m,
            e => panic!("expected InvalidOperation, got {e:?}"),
        }
    }

    fn fenced() -> Error {
        Error::Coordinator {
            api: "EndTxn",
            code: ErrorCode::PRODUCER_FENCED,
        }
    }

    #[test]
    fn the_happy_path_goes_round() {
        let mut s = TxnState::new("tx");
        s.begin_init().unwrap();
        assert_eq!(s.state.name(), "INITIALIZING");
        assert!(!s.may_drain());
        s.init_done();
        for _ in 0..2 {
            s.begin().unwrap();
            s.check_send().unwrap();
            s.check_send_offsets().unwrap();
            assert!(s.may_drain());
            s.begin_commit().unwrap();
            assert!(s.may_drain(), "commit flushes");
            assert!(s.check_send().is_err(), "no sends while committing");
            s.end_done();
            assert_eq!(s.state.name(), "READY");
            s.begin().unwrap();
            s.begin_abort().unwrap();
            assert!(!s.may_drain(), "an abort drains nothing more");
            s.end_done();
        }
    }

    #[test]
    fn misuse_is_refused_with_javas_reasons() {
        let mut s = TxnState::new("tx-9");
        let m = msg(s.check_send());
        assert!(
            m.contains("before completing a call to init_transactions"),
            "{m}"
        );
        assert!(m.contains("tx-9"), "{m}");
        assert!(msg(s.begin()).contains("init_transactions"));
        assert!(msg(s.begin_commit()).contains("UNINITIALIZED"));
        assert!(msg(s.begin_abort()).contains("UNINITIALIZED"));
        s.begin_init().unwrap();
        assert!(msg(s.begin_init()).contains("already called"));
        s.init_done();
        assert!(msg(s.begin_init()).contains("already called"));
        assert!(msg(s.check_send()).contains("not in a transaction"));
        assert!(msg(s.begin_commit()).contains("no transaction is open"));
        assert!(msg(s.begin_abort()).contains("no transaction is open"));
        assert!(msg(s.check_send_offsets()).contains("READY"));
        s.begin().unwrap();
        assert!(msg(s.begin()).contains("called twice"));
        s.begin_commit().unwrap();
        assert!(msg(s.begin_commit()).contains("COMMITTING_TRANSACTION"));
        assert!(msg(s.begin_abort()).contains("COMMITTING_TRANSACTION"));
        assert!(msg(s.begin()).contains("COMMITTING_TRANSACTION"));
    }

    #[test]
    fn an_abortable_error_needs_an_abort_then_a_new_transaction_works() {
        let mut s = TxnState::new("tx");
        s.begin_init().unwrap();
        s.init_done();
        // Not in a transaction: nothing to abort, the state stays.
        assert!(!s.abortable(Error::Closed));
        assert_eq!(s.state.name(), "READY");
        s.begin().unwrap();
        assert!(s.abortable(Error::Closed));
        assert!(!s.abortable(Error::aborted()), "the first cause stays");
        for e in [s.check_send(), s.begin_commit(), s.check_send_offsets()] {
            match e.unwrap_err() {
                Error::TransactionAbortable {
                    transactional_id,
                    cause,
                } => {
                    assert_eq!(transactional_id, "tx");
                    assert!(matches!(*cause, Error::Closed));
                }
                e => panic!("{e:?}"),
            }
        }
        assert!(!s.may_drain());
        s.begin_abort().unwrap();
        assert!(!s.abortable(Error::Closed), "an abort fails records itself");
        s.end_done();
        s.begin().unwrap();
        s.check_send().unwrap();
        // A failure while committing makes the commit abortable too.
        s.begin_commit().unwrap();
        assert!(s.abortable(Error::Closed));
        assert!(s.abortable_cause().is_some());
    }

    #[test]
    fn a_fatal_error_is_final_and_named_by_every_call() {
        let mut s = TxnState::new("tx-f");
        s.begin_init().unwrap();
        s.init_done();
        s.begin().unwrap();
        s.fatal(fenced());
        s.fatal(Error::Closed); // the first cause stays
        assert!(!s.abortable(Error::Closed));
        let calls = [
            s.clone_state().begin_init(),
            s.clone_state().begin(),
            s.check_send(),
            s.check_send_offsets(),
            s.clone_state().begin_commit(),
            s.clone_state().begin_abort(),
        ];
        for r in calls {
            let e = r.unwrap_err();
            assert!(e.is_fatal(), "{e:?}");
            assert_eq!(e.code(), Some(ErrorCode::PRODUCER_FENCED), "{e:?}");
            assert!(e.to_string().contains("tx-f"), "{e}");
        }
        assert!(!s.may_drain());
        assert!(s.fatal_cause().is_some());
    }

    impl TxnState {
        fn clone_state(&self) -> TxnState {
            TxnState {
                transactional_id: self.transactional_id.clone(),
                state: self.state.clone(),
            }
        }
    }
}
