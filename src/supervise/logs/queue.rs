//! A queue bounded by bytes, between async producers and one writer thread.
//!
//! Log files, the event journal and the foreground stream are written by threads of their
//! own, so a slow or full disk (or a terminal nobody reads) never stalls an async worker.
//! Producers never block a thread: [`ByteQueue::push`] refuses an item that would exceed
//! the bound, and [`ByteQueue::push_within`] waits for room asynchronously, for at most a
//! given time, before refusing. The writer thread blocks in [`ByteQueue::pop`]. The bound
//! counts the bytes producers declare for their items, so the memory the queue holds is
//! stated, whatever the writer's speed.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// A FIFO of items whose declared sizes add up to at most `capacity` bytes.
#[derive(Debug)]
pub struct ByteQueue<T> {
    state: Mutex<State<T>>,
    /// Wakes the writer thread.
    filled: Condvar,
    /// Wakes producers waiting for room.
    drained: Notify,
    capacity: usize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    /// An item is being handled by the writer (for [`ByteQueue::wait_idle`]).
    busy: bool,
    closed: bool,
}

impl<T> ByteQueue<T> {
    /// An empty queue holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                busy: false,
                closed: false,
            }),
            filled: Condvar::new(),
            drained: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every critical section below leaves the state consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `item` of `bytes` bytes, or hands it back if it does not fit (or the queue is
    /// closed). An item larger than the whole capacity fits only into an empty queue.
    pub fn push(&self, item: T, bytes: usize) -> Result<(), T> {
        let mut state = self.lock();
        let fits = state.bytes == 0 || state.bytes + bytes <= self.capacity;
        if state.closed || !fits {
            return Err(item);
        }
        state.bytes += bytes;
        state.items.push_back((item, bytes));
        drop(state);
        // `wait_idle` waits on the same condition variable: wake both kinds of waiter.
        self.filled.notify_all();
        Ok(())
    }

    /// [`ByteQueue::push`], waiting up to `patience` for the writer to make room.
    pub async fn push_within(&self, item: T, bytes: usize, patience: Duration) -> Result<(), T> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut item = item;
        loop {
            // Register before trying, so that a drain in between is not missed.
            let drained = self.drained.notified();
            match self.push(item, bytes) {
                Ok(()) => return Ok(()),
                Err(back) if self.is_closed() => return Err(back),
                Err(back) => item = back,
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return self.push(item, bytes);
            }
        }
    }

    /// The next item, blocking the calling thread until there is one; `None` once the queue
    /// is closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut state = self.lock();
        state.busy = false;
        loop {
            if let Some((item, bytes)) = state.items.pop_front() {
                state.bytes -= bytes;
                state.busy = true;
                drop(state);
                self.drained.notify_waiters();
                return Some(item);
            }
            if state.closed {
                self.filled.notify_all();
                return None;
            }
            self.filled.notify_all();
            state = self
                .filled
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks until every item pushed so far has been handled by the writer (it asked for
    /// the next one), or `timeout` passed; returns whether the queue is idle. For tests and
    /// shutdown.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .filled
            .wait_timeout_while(state, timeout, |s| {
                !s.closed && (s.busy || !s.items.is_empty())
            })
            .unwrap_or_else(PoisonError::into_inner);
        state.items.is_empty() && !state.busy
    }

    /// Refuses further items; the writer drains what is queued, then [`ByteQueue::pop`]
    /// returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.filled.notify_all();
        self.drained.notify_waiters();
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Bytes queued now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_bound_holds_and_an_oversized_item_fits_an_empty_queue() {
        let queue = ByteQueue::new(10);
        assert!(queue.push("a", 6).is_ok());
        assert_eq!(queue.push("b", 6), Err("b"));
        assert!(queue.push("c", 4).is_ok());
        assert_eq!(queue.bytes(), 10);
        assert_eq!(queue.pop(), Some("a"));
        assert_eq!(queue.pop(), Some("c"));
        assert!(
            queue.push("huge", 100).is_ok(),
            "an empty queue takes anything"
        );
        queue.close();
        assert_eq!(queue.pop(), Some("huge"), "closing drains first");
        assert_eq!(queue.pop(), None);
        assert_eq!(queue.push("late", 1), Err("late"));
    }

    #[tokio::test]
    async fn a_producer_waits_for_room_then_gives_up() {
        let queue = Arc::new(ByteQueue::new(4));
        queue.push(1, 4).expect("room");
        let writer = Arc::clone(&queue);
        let popped = std::thread::spawn(move || writer.pop());
        queue
            .push_within(2, 4, Duration::from_secs(5))
            .await
            .expect("the writer makes room");
        assert_eq!(popped.join().expect("writer thread"), Some(1));
        let refused = queue.push_within(3, 4, Duration::from_millis(10)).await;
        assert_eq!(refused, Err(3), "nobody drains: refused after the patience");
    }
}
