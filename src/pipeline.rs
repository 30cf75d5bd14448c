//! Pipelining: requests sent back to back without waiting, replies read in order. Every
//! future is polled once, in order, before any is awaited, so tokio-postgres queues their
//! messages in that order on the connection; then all are driven to completion.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Drives `futures` to completion, first polling each once in order; results in order.
pub async fn in_order<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    // Boxed as themselves, not as `dyn Future`: the caller's future stays `Send` when they are.
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut done = true;
        for (fut, slot) in pending.iter_mut().zip(results.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
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
                    // Later futures finish first.
                    for _ in 0..(50 - i) {
                        tokio::task::yield_now().await;
                    }
                    i * 10
                }
            })
            .collect();
        let out = in_order(futs).await;
        assert_eq!(out, (0..50).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(*log.borrow(), (0..50).collect::<Vec<_>>());
    }
}
