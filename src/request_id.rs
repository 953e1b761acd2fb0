//! The id of the request being served, for log lines written far from the request log (an
//! error's cause, a lost connection): a task-local of the request's future, carried to the
//! blocking thread that does its database work by `Database::run`, as the query count is.

use std::{cell::RefCell, future::Future, sync::Arc};

tokio::task_local! {
    static REQUEST: Arc<str>;
}

thread_local! {
    static ON_THIS_THREAD: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Runs `future` (a request) with `id` as its request id.
pub async fn scope<F: Future>(id: Arc<str>, future: F) -> F::Output {
    REQUEST.scope(id, future).await
}

/// The id of the request this task or thread serves, if any.
pub fn current() -> Option<Arc<str>> {
    REQUEST.try_with(Arc::clone).ok().or_else(|| ON_THIS_THREAD.with(|slot| slot.borrow().clone()))
}

/// Runs `work` on this (blocking) thread on behalf of request `id`.
pub fn attributed_to<T>(id: Option<Arc<str>>, work: impl FnOnce() -> T) -> T {
    let previous = ON_THIS_THREAD.with(|slot| slot.replace(id));
    let result = work();
    ON_THIS_THREAD.with(|slot| *slot.borrow_mut() = previous);
    result
}

/// The request id for a log line: the id, or `-` outside any request.
pub fn label() -> Arc<str> {
    current().unwrap_or_else(|| Arc::from("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_request_id_reaches_its_task_and_the_threads_working_for_it() {
        assert_eq!(&*label(), "-");
        let seen = scope(Arc::from("abc-1"), async {
            let id = current();
            let on_thread = std::thread::spawn(move || attributed_to(id, label)).join().unwrap();
            (label(), on_thread)
        })
        .await;
        assert_eq!((&*seen.0, &*seen.1), ("abc-1", "abc-1"));
        assert_eq!(&*label(), "-", "nothing is left behind");
    }
}
