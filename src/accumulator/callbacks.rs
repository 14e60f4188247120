//! A batch's send callbacks, kept by closure type so that a capturing
//! closure costs no allocation per record.
//!
//! A `Box<dyn FnOnce>` per record would allocate for every closure that
//! captures anything, and storing a type-erased closure inline takes
//! `unsafe`, which this crate forbids. Instead the closures of one type
//! go, unboxed, into one `Vec<(Meta, F)>` per batch ([`Typed`]), and
//! only that list is type-erased (`Box<dyn List>`, found again with
//! `Any::downcast_mut`). A sending loop passes one closure type, so a
//! batch holds one list: its allocations are per batch (the box, and the
//! vector's doublings from [`FIRST_CAPACITY`], or from the partition's last
//! batch's callback count: [`Callbacks::expect`]), never per record.
//!
//! Callbacks run in record order even when a batch holds several closure
//! types: [`Callbacks::run`] merges the lists by record offset.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Result;
use crate::record::RecordMetadata;

/// Room for this many callbacks when a batch gets its first of a type,
/// at least.
const FIRST_CAPACITY: usize = 64;

/// Never more room than this up front, whatever the last batch held.
const MAX_FIRST_CAPACITY: usize = 1 << 16;

/// What a callback needs to build its record's metadata.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub(crate) relative_offset: u32,
    pub(crate) timestamp: i64,
    pub(crate) key_size: i32,
    pub(crate) value_size: i32,
}

/// A callback on its way into a batch: `send_with_callback`'s closure,
/// handed to [`Callbacks::push`] once the record is appended, by a
/// `&mut dyn Register` (no box).
pub(crate) trait Register {
    /// Adds the callback to `to` for the record described by `meta`.
    fn register(&mut self, to: &mut Callbacks, meta: Meta);
}

/// The one [`Register`]: a closure not yet registered.
pub(crate) struct Pending<F>(pub(crate) Option<F>);

impl<F> Register for Pending<F>
where
    F: FnOnce(Result<RecordMetadata>) + Send + 'static,
{
    fn register(&mut self, to: &mut Callbacks, meta: Meta) {
        if let Some(f) = self.0.take() {
            to.push(meta, f);
        }
    }
}

/// The callbacks of one closure type, in record order: pushed onto
/// `filling`, which moves into `running` when the batch completes, so a
/// push is a `Vec` push and a run walks an iterator (no ring arithmetic
/// either way), and a panicking callback leaves the rest where they were.
struct Typed<F> {
    filling: Vec<(Meta, F)>,
    running: std::vec::IntoIter<(Meta, F)>,
}

/// A [`Typed`] list with its closure type erased.
trait List: Send {
    fn as_any(&mut self) -> &mut dyn Any;
    /// The offset of the next callback to run.
    fn next_offset(&self) -> Option<u32>;
    /// How many callbacks it holds.
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
    fn with(filling: Vec<(Meta, F)>) -> Self {
        Typed {
            filling,
            running: Vec::new().into_iter(),
        }
    }
}

impl<F> List for Typed<F>
where
    F: FnOnce(Result<RecordMetadata>) + Send + 'static,
{
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn next_offset(&self) -> Option<u32> {
        let next = match self.running.as_slice().first() {
            Some(c) => Some(c),
            None => self.filling.first(),
        };
        next.map(|(m, _)| m.relative_offset)
    }

    fn len(&self) -> usize {
        self.running.len() + self.filling.len()
    }

    fn run_below(&mut self, bound: u32, make: &dyn Fn(Meta) -> Result<RecordMetadata>) -> usize {
        if self.running.len() == 0 {
            self.running = std::mem::take(&mut self.filling).into_iter();
        }
        let mut panics = 0;
        // One `catch_unwind` for the run, not one per callback: a callback
        // leaves the iterator before it runs, so after a panic the loop
        // resumes with the next one.
        loop {
            let it = &mut self.running;
            let run = catch_unwind(AssertUnwindSafe(|| {
                if bound == u32::MAX {
                    // The only list, or the last one due: all of it.
                    for (meta, f) in it.by_ref() {
                        f(make(meta));
                    }
                    return;
                }
                while it
                    .as_slice()
                    .first()
                    .is_some_and(|(m, _)| m.relative_offset < bound)
                {
                    let (meta, f) = it.next().expect("checked");
                    f(make(meta));
                }
            }));
            match run {
                Ok(()) => return panics,
                Err(_) => panics += 1,
            }
        }
    }

    fn split_off(&mut self, at: u32) -> Box<dyn List> {
        debug_assert_eq!(self.running.len(), 0, "split after a run");
        let i = self
            .filling
            .partition_point(|(m, _)| m.relative_offset < at);
        let mut rest = self.filling.split_off(i);
        for (m, _) in &mut rest {
            m.relative_offset -= at;
        }
        Box::new(Typed::with(rest))
    }
}

/// A batch's callbacks; see the module docs.
#[derive(Default)]
pub(crate) struct Callbacks {
    /// One per closure type; almost always none or one.
    lists: Vec<Box<dyn List>>,
    /// How many callbacks the first list makes room for (0: the default).
    expected: usize,
}

impl Callbacks {
    /// Makes room for `n` callbacks when the first arrives: the partition's
    /// last batch's count, so a busy partition's lists are allocated once
    /// per batch rather than doubled up from [`FIRST_CAPACITY`] (the
    /// copies cost about 40 instructions per record at 1 MB batches).
    pub(crate) fn expect(&mut self, n: usize) {
        self.expected = n;
    }

    /// How many callbacks it holds.
    pub(crate) fn len(&self) -> usize {
        self.lists.iter().map(|l| l.len()).sum()
    }

    /// Adds `f`, the callback of the record described by `meta` (offsets
    /// ascend from one push to the next).
    pub(crate) fn push<F>(&mut self, meta: Meta, f: F)
    where
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        for l in &mut self.lists {
            if let Some(t) = l.as_any().downcast_mut::<Typed<F>>() {
                t.filling.push((meta, f));
                return;
            }
        }
        let room = if self.lists.is_empty() {
            // A quarter more than the last batch had: a batch a little
            // fuller than the last is not copied to double its list.
            (self.expected + self.expected / 4).clamp(FIRST_CAPACITY, MAX_FIRST_CAPACITY)
        } else {
            FIRST_CAPACITY
        };
        let mut q = Vec::with_capacity(room);
        q.push((meta, f));
        self.lists.push(Box::new(Typed::with(q)));
    }

    /// Takes the callbacks of records at offset `at` and above, their
    /// offsets shifted down by `at` (for the second half of a split).
    pub(crate) fn split_off(&mut self, at: u32) -> Callbacks {
        Callbacks {
            lists: self.lists.iter_mut().map(|l| l.split_off(at)).collect(),
            expected: 0,
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
            for (i, l) in self.lists.iter().enumerate() {
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
            panics += self.lists[i].run_below(bound, make);
        }
        self.lists.clear();
        panics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::{Arc, Mutex};

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
        assert_eq!(c.lists.len(), 2, "one list per closure type");
        let mut second = c.split_off(4);
        let offsets = |c: &mut Callbacks| {
            let got = Arc::new(Mutex::new(Vec::new()));
            let g = got.clone();
            c.run(&move |m| {
                g.lock().unwrap().push(m.relative_offset);
                Err(Error::Closed)
            });
            let v = got.lock().unwrap().clone();
            v
        };
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
        // latency samples), the others a second type.
        for i in 0..10u32 {
            let s = seen.clone();
            if i % 4 == 0 {
                let tag = String::from("sampled");
                c.push(meta(i), move |_| s.lock().unwrap().push((tag, i)));
            } else {
                c.push(meta(i), move |_| s.lock().unwrap().push((String::new(), i)));
            }
        }
        assert_eq!(c.lists.len(), 2, "one list per closure type");
        assert_eq!(c.run(&|_| Err(Error::Closed)), 0);
        let order: Vec<u32> = seen.lock().unwrap().iter().map(|(_, i)| *i).collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
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
        c.expect(3);
        for i in 0..10u32 {
            let r = ran.clone();
            c.push(meta(i), move |_| {
                if i % 3 == 0 {
                    panic!("callback panic (expected by a test)");
                }
                r.lock().unwrap().push(i);
            });
        }
        assert_eq!(c.lists.len(), 1);
        assert_eq!(c.len(), 10);
        assert_eq!(c.run(&|_| Err(Error::Closed)), 4, "0, 3, 6 and 9 panicked");
        assert_eq!(*ran.lock().unwrap(), [1, 2, 4, 5, 7, 8]);
        assert_eq!(c.len(), 0);
    }
}
