//! Offset bookkeeping: where the feed resumes, and when to start over.
//!
//! Offsets only grow for a user, but need not be contiguous. The cursor keeps
//! the last offset applied; events at or below it are repeats and are
//! skipped. Without an offset (first start, or after a gap) the widget must
//! fetch `/widget/calls` and continue from its `latest_offset`.

use callcard_calls::feed::{FeedEvent, PollAnswer};

/// The resume point of the feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedCursor {
    since: Option<u64>,
}

/// What to do after a poll answer was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollNext {
    /// Caught up: poll again after the usual pause.
    Wait,
    /// The server holds more: poll again right away.
    More,
    /// `since` was older than the kept history: fetch `/widget/calls`.
    Resync,
}

impl FeedCursor {
    pub fn new() -> Self {
        Self::default()
    }

    /// The offset to ask for (`since=`), if there is one.
    pub fn since(&self) -> Option<u64> {
        self.since
    }

    /// Whether the state must be rebuilt from `/widget/calls` first.
    pub fn needs_resync(&self) -> bool {
        self.since.is_none()
    }

    /// Whether `event` is new; if so the cursor moves past it.
    pub fn accept(&mut self, event: &FeedEvent) -> bool {
        match self.since {
            Some(s) if event.offset <= s => false,
            _ => {
                self.since = Some(event.offset);
                true
            }
        }
    }

    /// A fresh start from `/widget/calls` (or a `Gap`): continue after `latest`.
    pub fn restart_at(&mut self, latest: u64) {
        self.since = Some(latest);
    }

    /// Forgets the position: the next connection starts with a resync.
    pub fn lose(&mut self) {
        self.since = None;
    }

    /// Whether a heartbeat shows the socket skipped events we have not seen.
    pub fn is_behind(&self, latest_offset: u64) -> bool {
        self.since.is_some_and(|s| latest_offset > s)
    }

    /// Applies a poll answer: returns the new events, oldest first, and what
    /// to do next.
    pub fn take_poll(&mut self, answer: PollAnswer) -> (Vec<FeedEvent>, PollNext) {
        if answer.gap {
            self.lose();
            return (Vec::new(), PollNext::Resync);
        }
        let mut events = answer.events;
        events.sort_by_key(|e| e.offset);
        let fresh: Vec<FeedEvent> = events.into_iter().filter(|e| self.accept(e)).collect();
        if fresh.is_empty() {
            // Nothing for us after `since`: whatever the server counted up to
            // `latest_offset` is not ours, so skip ahead.
            if self.since.is_none_or(|s| answer.latest_offset > s) {
                self.since = Some(answer.latest_offset);
            }
            return (fresh, PollNext::Wait);
        }
        let next = if self.is_behind(answer.latest_offset) { PollNext::More } else { PollNext::Wait };
        (fresh, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::view;
    use callcard_calls::{CallEventKind, Direction};

    fn ev(offset: u64) -> FeedEvent {
        FeedEvent { offset, call: view(Direction::Inbound, "+1830", &[CallEventKind::Ringing]) }
    }

    #[test]
    fn repeats_are_skipped_and_the_cursor_advances() {
        let mut c = FeedCursor::new();
        assert!(c.needs_resync());
        c.restart_at(10);
        assert!(!c.needs_resync());
        assert!(!c.accept(&ev(9)));
        assert!(!c.accept(&ev(10)));
        assert!(c.accept(&ev(12)));
        assert!(!c.accept(&ev(11)), "older than what was applied");
        assert_eq!(c.since(), Some(12));
        assert!(c.is_behind(13));
        assert!(!c.is_behind(12));
    }

    #[test]
    fn poll_answers_resume_page_and_gap() {
        let mut c = FeedCursor::new();
        c.restart_at(5);
        let (events, next) =
            c.take_poll(PollAnswer { events: vec![ev(8), ev(5), ev(7)], gap: false, latest_offset: 20 });
        assert_eq!(events.iter().map(|e| e.offset).collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(next, PollNext::More);
        let (events, next) = c.take_poll(PollAnswer { events: vec![], gap: false, latest_offset: 20 });
        assert!(events.is_empty());
        assert_eq!(next, PollNext::Wait);
        assert_eq!(c.since(), Some(20));
        let (_, next) = c.take_poll(PollAnswer { events: vec![ev(30)], gap: true, latest_offset: 40 });
        assert_eq!(next, PollNext::Resync);
        assert!(c.needs_resync());
    }
}
