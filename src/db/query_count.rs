//! Counting the database queries of one request: reported in its `Server-Timing` header and
//! log line, so that list pages can be held to a number of queries that does not grow with
//! the rows they show (tests and the page benchmark read it).
//!
//! A request's counter lives in a task-local of the request's future; `Database::run` carries
//! it to the blocking thread that does the work, where the connection's instrumentation finds
//! it in a thread-local.

use std::{
    cell::RefCell,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
};

use diesel::connection::{Instrumentation, InstrumentationEvent};

/// The number of queries one request has issued so far.
#[derive(Debug, Clone, Default)]
pub struct QueryCount(Arc<AtomicU32>);

impl QueryCount {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

tokio::task_local! {
    static REQUEST: QueryCount;
}

thread_local! {
    static ON_THIS_THREAD: RefCell<Option<QueryCount>> = const { RefCell::new(None) };
}

/// Runs `future` (a request) with `count` as its query counter.
pub async fn counting<F: Future>(count: QueryCount, future: F) -> F::Output {
    REQUEST.scope(count, future).await
}

/// The counter of the request being served by this task, if any.
pub fn current() -> Option<QueryCount> {
    REQUEST.try_with(QueryCount::clone).ok()
}

/// Runs `work` on this (blocking) thread with `count` as the counter its queries go to.
pub fn attributed_to<T>(count: Option<QueryCount>, work: impl FnOnce() -> T) -> T {
    let previous = ON_THIS_THREAD.with(|slot| slot.replace(count));
    let result = work();
    ON_THIS_THREAD.with(|slot| *slot.borrow_mut() = previous);
    result
}

/// Connection instrumentation that counts each query for the request it serves.
pub fn instrumentation() -> impl Instrumentation {
    |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { .. } = event {
            ON_THIS_THREAD.with(|slot| {
                if let Some(count) = slot.borrow().as_ref() {
                    count.0.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }
}
