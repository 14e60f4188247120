//! A batch's send callbacks, kept by closure type so that a capturing
//! closure costs no allocation per record.
//!
//! A `Box<dyn FnOnce>` per record would allocate for every closure that
//! captures anything, and storing a type-erased closure inline takes
//! `unsafe`, which this crate forbids. Instead the closures of one type
//! go, unboxed, into one `VecDeque<(Meta, F)>` per batch ([`Typed`]), and
//! only that list is type-erased (`Box<dyn List>`, found again with
//! `Any::downcast_mut`). A sending loop passes one closure type, so a
//! batch holds one list: its allocations are per batch (the box, and the
//! deque's doublings from [`FIRST_CAPACITY`]), never per record.
//!
//! Callbacks run in record order even when a batch holds several closure
//! types: [`Callbacks::run`] merges the lists by record offset.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Result;
use crate::record::RecordMetadata;

/// Room for this many callbacks when a batch gets its first of a type.
const FIRST_CAPACITY: usize = 64;

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

/// The callbacks of one closure type, in record order.
struct Typed<F>(VecDeque<(Meta, F)>);

/// A [`Typed`] list with its closure type erased.
trait List: Send {
    fn as_any(&mut self) -> &mut dyn Any;
    /// The offset of the next callback to run.
    fn next_offset(&self) -> Option<u32>;
    /// Runs, in order, the callbacks of offsets below `bound`, each with
    /// what `make` builds from its [`Meta`]; returns how many panicked
    /// (the panics are caught).
    fn run_below(&mut self, bound: u32, make: &dyn Fn(Meta) -> Result<RecordMetadata>) -> usize;
    /// Takes the callbacks of offsets `at` and above, shifted down by `at`.
    fn split_off(&mut self, at: u32) -> Box<dyn List>;
}

impl<F> List for Typed<F>
where
    F: FnOnce(Result<RecordMetadata>) + Send + 'static,
{
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn next_offset(&self) -> Option<u32> {
        self.0.front().map(|(m, _)| m.relative_offset)
    }

    fn run_below(&mut self, bound: u32, make: &dyn Fn(Meta) -> Result<RecordMetadata>) -> usize {
        let mut panics = 0;
        while self
            .0
            .front()
            .is_some_and(|(m, _)| m.relative_offset < bound)
        {
            let (meta, f) = self.0.pop_front().expect("checked");
            let r = make(meta);
            if catch_unwind(AssertUnwindSafe(move || f(r))).is_err() {
                panics += 1;
            }
        }
        panics
    }

    fn split_off(&mut self, at: u32) -> Box<dyn List> {
        let i = self.0.partition_point(|(m, _)| m.relative_offset < at);
        let mut rest = self.0.split_off(i);
        for (m, _) in &mut rest {
            m.relative_offset -= at;
        }
        Box::new(Typed(rest))
    }
}

/// A batch's callbacks; see the module docs.
#[derive(Default)]
pub(crate) struct Callbacks {
    /// One per closure type; almost always none or one.
    lists: Vec<Box<dyn List>>,
}

impl Callbacks {
    /// Adds `f`, the callback of the record described by `meta` (offsets
    /// ascend from one push to the next).
    pub(crate) fn push<F>(&mut self, meta: Meta, f: F)
    where
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        for l in &mut self.lists {
            if let Some(t) = l.as_any().downcast_mut::<Typed<F>>() {
                t.0.push_back((meta, f));
                return;
            }
        }
        let mut q = VecDeque::with_capacity(FIRST_CAPACITY);
        q.push_back((meta, f));
        self.lists.push(Box::new(Typed(q)));
    }

    /// Takes the callbacks of records at offset `at` and above, their
    /// offsets shifted down by `at` (for the second half of a split).
    pub(crate) fn split_off(&mut self, at: u32) -> Callbacks {
        Callbacks {
            lists: self.lists.iter_mut().map(|l| l.split_off(at)).collect(),
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
}
