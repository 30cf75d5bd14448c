//! Driving a chain's flight: requests sent back to back, replies read in order, at a cost that
//! grows with the flight's length, not with its square. Like `pipeline::in_order`, every
//! future is polled once, in order, so tokio-postgres queues their messages in that order; but
//! after that first pass only the earliest unfinished futures are polled, up to the first one
//! still pending. Replies come in order, so no future after it can be ready; each of them
//! registered the task's waker in the first pass, and its reply wakes the task again.
//!
//! The futures come boxed, each at its own size (a simple query's is a sixth of a prepared
//! statement's), and from an iterator, so a flight of 250 requests is built once, on the heap,
//! and never held twice.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Drives `futures` to completion, first polling each once in order; results in order.
pub(super) async fn in_order<F: Future + ?Sized>(
    futures: impl IntoIterator<Item = Pin<Box<F>>>,
) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    let mut first_pass = true;
    // The earliest future not finished yet.
    let mut next = 0;
    std::future::poll_fn(move |cx| {
        for (i, fut) in pending.iter_mut().enumerate().skip(next) {
            if results[i].is_some() {
                continue;
            }
            match fut.as_mut().poll(cx) {
                Poll::Ready(v) => results[i] = Some(v),
                Poll::Pending if first_pass => {}
                Poll::Pending => break,
            }
        }
        first_pass = false;
        while next < results.len() && results[next].is_some() {
            next += 1;
        }
        if next == results.len() {
            Poll::Ready(results.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[tokio::test]
    async fn first_polls_happen_in_order_and_results_keep_it() {
        let log = RefCell::new(Vec::new());
        let futs: Vec<_> = (0..50)
            .map(|i| {
                let log = &log;
                async move {
                    log.borrow_mut().push(i);
                    // Later futures are ready first: they wait for nothing.
                    for _ in 0..(50 - i) {
                        tokio::task::yield_now().await;
                    }
                    i * 10
                }
            })
            .collect();
        let out = in_order(futs.into_iter().map(Box::pin)).await;
        assert_eq!(out, (0..50).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(*log.borrow(), (0..50).collect::<Vec<_>>());
    }
}
