//! Pipelining: requests sent back to back without waiting, replies read in order. Every
//! future is polled once, in order, before any is awaited, so tokio-postgres queues their
//! messages in that order on the connection. After that first pass only the earliest
//! unfinished futures are polled, up to the first one still pending: replies come in order, so
//! no future after it can be ready; each of them registered the task's waker in the first
//! pass, and its reply wakes the task again. So driving a flight costs time linear in its
//! length, not quadratic (a chain's flight holds 250 requests).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Drives `futures` to completion, first polling each once in order; results in order.
pub async fn in_order<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    // Boxed as themselves, not as `dyn Future`: the caller's future stays `Send` when they are.
    in_order_boxed(futures.into_iter().map(Box::pin)).await
}

/// [`in_order`] for futures already boxed, each at its own size (`F` may be `dyn Future`),
/// taken from an iterator so a long flight is built once, on the heap, and never held twice.
pub async fn in_order_boxed<F: Future + ?Sized>(
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

    #[tokio::test]
    async fn boxed_futures_of_different_kinds_keep_their_order() {
        let futs: Vec<Pin<Box<dyn Future<Output = usize>>>> = (0..20)
            .map(|i| -> Pin<Box<dyn Future<Output = usize>>> {
                if i % 2 == 0 {
                    Box::pin(async move { i })
                } else {
                    Box::pin(async move {
                        tokio::task::yield_now().await;
                        i
                    })
                }
            })
            .collect();
        assert_eq!(in_order_boxed(futs).await, (0..20).collect::<Vec<_>>());
    }
}
