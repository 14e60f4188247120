//! A batch's send callbacks, kept by closure type so that a capturing
//! closure costs no allocation per record.
//!
//! A `Box<dyn FnOnce>` per record would allocate for every closure that
//! captures anything, and storing a type-erased closure inline takes
//! `unsafe`, which this crate forbids. Instead the closures of one type
//! go, unboxed, into one list per batch ([`Typed`]), and only that list
//! is type-erased (`Box<dyn List>`, found again with `Any::downcast_mut`).
//! A sending loop passes one closure type, so a batch holds one list. The
//! list is a run of chunks, [`FIRST_CHUNK`] callbacks and then twice as
//! many up to [`MAX_CHUNK`]: it grows by adding a chunk, never by copying
//! what it holds (doubling one vector cost about 30 instructions per
//! record at 1 MB batches), so its allocations are a box and a chunk per
//! [`MAX_CHUNK`] records at most, never one per record; a batch with one
//! closure type and fewer than [`FIRST_CHUNK`] callbacks makes exactly
//! two (the box and its chunk), not four (no vector of lists, no vector
//! of chunks).
//!
//! Callbacks run in record order even when a batch holds several closure
//! types: [`Callbacks::run`] merges the lists by record offset.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Result;
use crate::record::RecordMetadata;

/// Room for this many callbacks in a list's first chunk: a trickle's
/// batches hold few.
const FIRST_CHUNK: usize = 64;

/// Chunks double from [`FIRST_CHUNK`] up to this many callbacks.
const MAX_CHUNK: usize = 1024;

/// What a callback needs to build its record's metadata.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub(crate) relative_offset: u32,
    pub(crate) timestamp: i64,
    pub(crate) key_size: i32,
    pub(crate) value_size: i32,
}

/// A callback on its way into a batch: `send_with_callback`'s closure,
/// handed to [`Callbacks::push`] once the record is appended. The send
/// path is generic over it (no box, no indirect call per record).
pub(crate) trait Register {
    /// Adds the callback to `to` for the record described by `meta`.
    fn register(&mut self, to: &mut Callbacks, meta: Meta);
}

/// `send` without a callback: registers nothing.
pub(crate) struct NoCallback;

impl Register for NoCallback {
    #[inline]
    fn register(&mut self, _: &mut Callbacks, _: Meta) {}
}

/// The one [`Register`]: a closure not yet registered.
pub(crate) struct Pending<F>(pub(crate) Option<F>);

impl<F> Register for Pending<F>
where
    F: FnOnce(Result<RecordMetadata>) + Send + 'static,
{
    #[inline]
    fn register(&mut self, to: &mut Callbacks, meta: Meta) {
        if let Some(f) = self.0.take() {
            to.push(meta, f);
        }
    }
}

/// The callbacks of one closure type, in record order: pushed onto
/// `last`, the chunk being filled, which moves to `full` when it is (no
/// chunk there is empty); when the batch completes the chunks run one at
/// a time from `running`, the rest waiting in `rest`, so a panicking
/// callback leaves the rest where they were. A batch with fewer than
/// [`FIRST_CHUNK`] callbacks of a type allocates their chunk and nothing
/// else: with many partitions a batch holds a dozen records, so what a
/// batch allocates is paid every dozen records.
struct Typed<F> {
    full: Vec<Vec<(Meta, F)>>,
    last: Vec<(Meta, F)>,
    running: std::vec::IntoIter<(Meta, F)>,
    rest: std::vec::IntoIter<Vec<(Meta, F)>>,
}

/// A [`Typed`] list with its closure type erased (and found again by
/// upcasting to `dyn Any`: one indirect call, `type_id`, per push).
trait List: Any + Send {
    /// The offset of the next callback to run.
    fn next_offset(&self) -> Option<u32>;
    /// How many callbacks it holds.
    #[cfg(test)]
    fn len(&self) -> usize;
    /// Runs, in order, the callbacks of offsets below `bound`, each with
    /// what `make` builds from its [`Meta`]; returns how many panicked
    /// (the panics are caught).
    fn run_below(&mut self, bound: u32, make: &dyn Fn(Meta) -> Result<RecordMetadata>) -> usize;
    /// Takes the callbacks of offsets `at` and above, shifted down by `at`
    /// (before any has run).
    fn split_off(&mut self, at: u32) -> Box<dyn List>;
}

impl<F> Typed<F> {
    /// A list of `chunks`, in order (none empty), the last one filling.
    fn with(mut chunks: Vec<Vec<(Meta, F)>>) -> Self {
        let last = chunks.pop().unwrap_or_default();
        Typed {
            full: chunks,
            last,
            running: Vec::new().into_iter(),
            rest: Vec::new().into_iter(),
        }
    }

    #[inline]
    fn push(&mut self, meta: Meta, f: F) {
        if self.last.len() == self.last.capacity() {
            self.next_chunk();
        }
        self.last.push((meta, f));
    }

    /// A new chunk to fill, [`FIRST_CHUNK`] doubling to [`MAX_CHUNK`]; the
    /// full one, if any, goes to `full`.
    #[cold]
    fn next_chunk(&mut self) {
        let chunks = self.full.len() + usize::from(self.last.capacity() > 0);
        let room = (FIRST_CHUNK << chunks.min(8)).min(MAX_CHUNK);
        let full = std::mem::replace(&mut self.last, Vec::with_capacity(room));
        if !full.is_empty() {
            self.full.push(full);
        }
    }

    /// Every chunk not yet run, in order (before a run only).
    fn take_chunks(&mut self) -> Vec<Vec<(Meta, F)>> {
        let mut chunks = std::mem::take(&mut self.full);
        let last = std::mem::take(&mut self.last);
        if !last.is_empty() {
            chunks.push(last);
        }
        chunks
    }
}

impl<F> List for Typed<F>
where
    F: FnOnce(Result<RecordMetadata>) + Send + 'static,
{
    fn next_offset(&self) -> Option<u32> {
        let next = match self.running.as_slice().first() {
            Some(c) => Some(c),
            None => match self.rest.as_slice().first() {
                Some(chunk) => chunk.first(),
                None => match self.full.first() {
                    Some(chunk) => chunk.first(),
                    None => self.last.first(),
                },
            },
        };
        next.map(|(m, _)| m.relative_offset)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let chunks = |c: &[Vec<(Meta, F)>]| c.iter().map(Vec::len).sum::<usize>();
        self.running.len() + chunks(self.rest.as_slice()) + chunks(&self.full) + self.last.len()
    }

    fn run_below(&mut self, bound: u32, make: &dyn Fn(Meta) -> Result<RecordMetadata>) -> usize {
        if self.running.len() == 0 && self.rest.len() == 0 {
            if self.full.is_empty() {
                // One chunk (the usual case): it runs as it is.
                self.running = std::mem::take(&mut self.last).into_iter();
            } else {
                self.rest = self.take_chunks().into_iter();
            }
        }
        let mut panics = 0;
        // One `catch_unwind` for the run, not one per callback: a callback
        // leaves its iterator before it runs, so after a panic the loop
        // resumes with the next one.
        loop {
            let (it, rest) = (&mut self.running, &mut self.rest);
            let run = catch_unwind(AssertUnwindSafe(|| loop {
                if bound == u32::MAX {
                    // The only list, or the last one due: all of it.
                    for (meta, f) in it.by_ref() {
                        f(make(meta));
                    }
                } else {
                    while it
                        .as_slice()
                        .first()
                        .is_some_and(|(m, _)| m.relative_offset < bound)
                    {
                        let (meta, f) = it.next().expect("checked");
                        f(make(meta));
                    }
                    if it.len() > 0 {
                        return; // the next one is another list's turn
                    }
                }
                match rest.next() {
                    Some(chunk) => *it = chunk.into_iter(),
                    None => return,
                }
            }));
            match run {
                Ok(()) => return panics,
                Err(_) => panics += 1,
            }
        }
    }

    fn split_off(&mut self, at: u32) -> Box<dyn List> {
        debug_assert_eq!(self.running.len() + self.rest.len(), 0, "split after a run");
        // From the first chunk that holds an offset of `at` or above, every
        // chunk moves; that first one is split where `at` falls.
        let mut kept = self.take_chunks();
        let i = kept.partition_point(|c| c.last().is_some_and(|(m, _)| m.relative_offset < at));
        let mut moved = kept.split_off(i);
        if let Some(first) = moved.first_mut() {
            let k = first.partition_point(|(m, _)| m.relative_offset < at);
            if k > 0 {
                let tail = first.split_off(k);
                kept.push(std::mem::replace(first, tail));
            }
        }
        for (m, _) in moved.iter_mut().flatten() {
            m.relative_offset -= at;
        }
        *self = Typed::with(kept);
        Box::new(Typed::with(moved))
    }
}

/// A batch's callbacks; see the module docs.
#[derive(Default)]
pub(crate) struct Callbacks {
    /// The first closure type's list (almost always the only one): held
    /// here, not in `more`, so that a batch with one type allocates no
    /// vector of lists.
    first: Option<Box<dyn List>>,
    /// The lists of the other closure types.
    more: Vec<Box<dyn List>>,
}

impl Callbacks {
    /// How many callbacks it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lists().map(|l| l.len()).sum()
    }

    /// How many closure types' lists it holds.
    #[cfg(test)]
    fn list_count(&self) -> usize {
        self.lists().count()
    }

    #[cfg(test)]
    fn lists(&self) -> impl Iterator<Item = &Box<dyn List>> {
        self.first.iter().chain(&self.more)
    }

    fn lists_mut(&mut self) -> impl Iterator<Item = &mut Box<dyn List>> {
        self.first.iter_mut().chain(&mut self.more)
    }

    /// Adds `f`, the callback of the record described by `meta` (offsets
    /// ascend from one push to the next).
    #[inline]
    pub(crate) fn push<F>(&mut self, meta: Meta, f: F)
    where
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        for l in self.lists_mut() {
            let any: &mut dyn Any = &mut **l;
            if let Some(t) = any.downcast_mut::<Typed<F>>() {
                t.push(meta, f);
                return;
            }
        }
        let mut t = Typed::with(Vec::new());
        t.push(meta, f);
        let list: Box<dyn List> = Box::new(t);
        match self.first {
            None => self.first = Some(list),
            Some(_) => self.more.push(list),
        }
    }

    /// Takes the callbacks of records at offset `at` and above, their
    /// offsets shifted down by `at` (for the second half of a split).
    pub(crate) fn split_off(&mut self, at: u32) -> Callbacks {
        Callbacks {
            first: self.first.as_mut().map(|l| l.split_off(at)),
            more: self.more.iter_mut().map(|l| l.split_off(at)).collect(),
        }
    }

    /// Runs every callback once, in record order, with what `make` builds
    /// for it. A panicking callback is caught; returns how many panicked.
    pub(crate) fn run(&mut self, make: &dyn Fn(Meta) -> Result<RecordMetadata>) -> usize {
        let mut panics = 0;
        // Merged by offset a run at a time: the list whose next callback
        // comes first runs until another list's next one is due. With one
        // closure type (the usual case) that is one call for the batch.
        loop {
            let mut first: Option<(u32, usize)> = None;
            let mut bound = u32::MAX;
            for (i, l) in self.lists_mut().enumerate() {
                let Some(o) = l.next_offset() else { continue };
                match first {
                    Some((f, _)) if o >= f => bound = bound.min(o),
                    _ => {
                        if let Some((f, _)) = first {
                            bound = bound.min(f);
                        }
                        first = Some((o, i));
                    }
                }
            }
            let Some((_, i)) = first else { break };
            let list = self.lists_mut().nth(i).expect("found above");
            panics += list.run_below(bound, make);
        }
        self.first = None;
        self.more.clear();
        panics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::{Arc, Mutex};

    /// Runs `c`'s callbacks and returns the record offsets it built
    /// metadata for, in the order it did.
    fn offsets(c: &mut Callbacks) -> Vec<u32> {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        c.run(&move |m| {
            g.lock().unwrap().push(m.relative_offset);
            Err(Error::Closed)
        });
        let v = got.lock().unwrap().clone();
        v
    }

    fn meta(relative_offset: u32) -> Meta {
        Meta {
            relative_offset,
            timestamp: 0,
            key_size: -1,
            value_size: -1,
        }
    }

    #[test]
    fn callbacks_of_several_types_run_once_each_in_record_order_and_split() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut c = Callbacks::default();
        for i in 0..6u32 {
            let s = seen.clone();
            if i % 2 == 0 {
                c.push(meta(i), move |_| s.lock().unwrap().push(("even", i)));
            } else {
                let tag = String::from("odd");
                c.push(meta(i), move |_| s.lock().unwrap().push((tag.leak(), i)));
            }
        }
        assert_eq!(c.list_count(), 2, "one list per closure type");
        let mut second = c.split_off(4);
        assert_eq!(offsets(&mut c), [0, 1, 2, 3]);
        assert_eq!(offsets(&mut second), [0, 1], "shifted down by 4");
        let order: Vec<u32> = seen.lock().unwrap().iter().map(|(_, i)| *i).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5]);
        assert_eq!(offsets(&mut c), [0u32; 0], "each runs once");
    }

    #[test]
    fn runs_of_one_type_between_another_types_callbacks_keep_record_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut c = Callbacks::default();
        // Every fourth record has a capturing closure (as the perf tool's
        // latency samples), the others a second type; both lists run
        // over several chunks.
        for i in 0..500u32 {
            let s = seen.clone();
            if i % 4 == 0 {
                let tag = String::from("sampled");
                c.push(meta(i), move |_| s.lock().unwrap().push((tag, i)));
            } else {
                c.push(meta(i), move |_| s.lock().unwrap().push((String::new(), i)));
            }
        }
        assert_eq!(c.list_count(), 2, "one list per closure type");
        assert_eq!(c.run(&|_| Err(Error::Closed)), 0);
        let order: Vec<u32> = seen.lock().unwrap().iter().map(|(_, i)| *i).collect();
        assert_eq!(order, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_callback_is_counted_and_the_rest_still_run() {
        let ran = Arc::new(Mutex::new(0));
        let mut c = Callbacks::default();
        c.push(meta(0), |_| panic!("callback panic (expected by a test)"));
        let r = ran.clone();
        c.push(meta(1), move |_| *r.lock().unwrap() += 1);
        assert_eq!(c.run(&|_| Err(Error::Closed)), 1);
        assert_eq!(*ran.lock().unwrap(), 1);
    }

    /// One closure type, so one list run under one `catch_unwind`: each
    /// panic is counted, and the run goes on after it, in order.
    #[test]
    fn panics_within_one_list_are_each_counted_and_the_run_goes_on() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let mut c = Callbacks::default();
        for i in 0..10u32 {
            let r = ran.clone();
            c.push(meta(i), move |_| {
                if i % 3 == 0 {
                    panic!("callback panic (expected by a test)");
                }
                r.lock().unwrap().push(i);
            });
        }
        assert_eq!(c.list_count(), 1);
        assert_eq!(c.len(), 10);
        assert_eq!(c.run(&|_| Err(Error::Closed)), 4, "0, 3, 6 and 9 panicked");
        assert_eq!(*ran.lock().unwrap(), [1, 2, 4, 5, 7, 8]);
        assert_eq!(c.len(), 0);
    }

    /// A list of several chunks (64, 128, 256, ... callbacks) splits at any
    /// offset, on a chunk boundary or inside a chunk, into two lists that
    /// each run once, in order, with offsets shifted in the second.
    #[test]
    fn a_list_of_several_chunks_splits_anywhere_and_runs_in_order() {
        let n = 64 + 128 + 256 + 10;
        for at in [0u32, 1, 63, 64, 65, 191, 192, 300, n - 1, n, n + 5] {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let mut c = Callbacks::default();
            for i in 0..n {
                let s = seen.clone();
                c.push(meta(i), move |r: Result<RecordMetadata>| {
                    let offset = match r {
                        Ok(m) => m.offset(),
                        Err(_) => -1,
                    };
                    s.lock().unwrap().push((i, offset));
                });
            }
            assert_eq!(c.len(), n as usize);
            let mut second = c.split_off(at);
            let first_len = at.min(n) as usize;
            assert_eq!(
                (c.len(), second.len()),
                (first_len, n as usize - first_len),
                "at {at}"
            );
            let a = offsets(&mut c);
            let b = offsets(&mut second);
            assert_eq!(a, (0..first_len as u32).collect::<Vec<_>>(), "at {at}");
            assert_eq!(
                b,
                (0..n - first_len as u32).collect::<Vec<_>>(),
                "at {at}: shifted"
            );
            let order: Vec<u32> = seen.lock().unwrap().iter().map(|(i, _)| *i).collect();
            assert_eq!(
                order,
                (0..n).collect::<Vec<_>>(),
                "at {at}: each once, in order"
            );
        }
    }

    /// Panics across chunk boundaries: every callback still runs once.
    #[test]
    fn panics_in_several_chunks_are_counted_and_every_callback_runs_once() {
        let ran = Arc::new(Mutex::new(0u32));
        let mut c = Callbacks::default();
        let n = 64 + 128 + 5;
        for i in 0..n {
            let r = ran.clone();
            c.push(meta(i), move |_| {
                *r.lock().unwrap() += 1;
                if i == 0 || i == 63 || i == 64 || i == n - 1 {
                    panic!("callback panic (expected by a test)");
                }
            });
        }
        assert_eq!(c.run(&|_| Err(Error::Closed)), 4);
        assert_eq!(*ran.lock().unwrap(), n);
        assert_eq!(c.len(), 0);
    }
}
