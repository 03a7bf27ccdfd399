//! `call_later`: calls a Python callable once, after a delay, unless it is cancelled first.
//! The delay is kept by one timer thread of Rust's, which waits without the GIL and takes it
//! only to make a call that is due. A sync run's background writer starts draining this way
//! (see `ferrograph.graph._writer`): a Python thread woken while the run computes takes the GIL
//! from it at its next blocking call, and costs a short run more than its whole write.

use std::cmp::Ordering as Order;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A call waiting for its time: made at most once, by whichever of the timer (`fire`) and the
/// caller (`cancel`) takes the callable first.
struct Pending {
    done: AtomicBool,
    callable: Mutex<Option<Py<PyAny>>>,
}

impl Pending {
    fn take(&self) -> Option<Py<PyAny>> {
        if self.done.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.callable.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn fire(&self) {
        let Some(callable) = self.take() else { return };
        // During interpreter shutdown nothing is called (the callable is then left undropped).
        Python::try_attach(|py| {
            if let Err(e) = callable.call0(py) {
                e.write_unraisable(py, Some(callable.bind(py)));
            }
        });
    }
}

struct Due {
    when: Instant,
    seq: u64,
    call: Arc<Pending>,
}

// Ordered for BinaryHeap (a max-heap) so that the earliest call, then the first scheduled,
// comes out first.
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Order {
        other.when.cmp(&self.when).then(other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Order> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Order::Equal
    }
}

impl Eq for Due {}

struct Timer {
    queue: Mutex<BinaryHeap<Due>>,
    changed: Condvar,
    seq: AtomicU64,
}

impl Timer {
    fn get() -> &'static Timer {
        static TIMER: OnceLock<&'static Timer> = OnceLock::new();
        TIMER.get_or_init(|| {
            let timer: &'static Timer = Box::leak(Box::new(Timer {
                queue: Mutex::new(BinaryHeap::new()),
                changed: Condvar::new(),
                seq: AtomicU64::new(0),
            }));
            std::thread::Builder::new()
                .name("ferrograph-timer".into())
                .spawn(move || timer.run())
                .expect("the timer thread starts");
            timer
        })
    }

    fn lock(&self) -> MutexGuard<'_, BinaryHeap<Due>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut queue = self.lock();
        loop {
            let now = Instant::now();
            let wait = match queue.peek() {
                None => None,
                // A cancelled call is dropped without waiting for its time, so that the
                // thread sleeps until the next call still to be made (a run cancels its call
                // when it ends, usually long before the call's time).
                Some(due) if due.call.done.load(Ordering::Acquire) => {
                    queue.pop();
                    continue;
                }
                Some(due) if due.when > now => Some(due.when - now),
                Some(_) => {
                    let due = queue.pop().expect("peeked");
                    drop(queue);
                    due.call.fire();
                    queue = self.lock();
                    continue;
                }
            };
            queue = match wait {
                None => self.changed.wait(queue).unwrap_or_else(PoisonError::into_inner),
                Some(wait) => self.changed.wait_timeout(queue, wait).unwrap_or_else(PoisonError::into_inner).0,
            };
        }
    }
}

/// A call scheduled by `call_later`.
#[pyclass(frozen, module = "ferrograph._core")]
pub struct Later {
    call: Arc<Pending>,
}

#[pymethods]
impl Later {
    /// Keeps the call from being made; true if it had not been made yet.
    fn cancel(&self) -> bool {
        // Dropped here, with the GIL held.
        self.call.take().is_some()
    }
}

/// Calls `callable()` (no arguments) on the timer thread after `delay` seconds, unless
/// `cancel()` is called on the result first. An exception it raises is reported as unraisable.
#[pyfunction]
fn call_later(delay: f64, callable: Py<PyAny>) -> PyResult<Later> {
    let delay = Duration::try_from_secs_f64(delay).map_err(|_| PyValueError::new_err(format!("delay must be a number of seconds >= 0, not {delay}")))?;
    let call = Arc::new(Pending { done: AtomicBool::new(false), callable: Mutex::new(Some(callable)) });
    let timer = Timer::get();
    let seq = timer.seq.fetch_add(1, Ordering::Relaxed);
    let mut queue = timer.lock();
    queue.push(Due { when: Instant::now() + delay, seq, call: call.clone() });
    // The timer thread sleeps until the earliest call's time (cancelled calls stay queued
    // until then): it needs waking only when this call is now the earliest. A run every
    // millisecond or so (each cancelling its call when it ends) then wakes nobody.
    let earliest = queue.peek().is_some_and(|due| due.seq == seq);
    drop(queue);
    if earliest {
        timer.changed.notify_one();
    }
    Ok(Later { call })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Later>()?;
    m.add_function(wrap_pyfunction!(call_later, m)?)?;
    Ok(())
}
