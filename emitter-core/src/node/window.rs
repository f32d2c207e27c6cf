//! The sender's window: the events this node emitted lately, kept so that a peer that lost
//! some can have them again. Bounded by bytes and by age; the oldest leave first.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use foldhash::HashMap;

/// Bytes counted for each kept event beside its payload and name.
const KEPT_OVERHEAD: usize = 64;

/// One kept event.
struct Kept {
    name: Arc<str>,
    seq: u64,
    payload: Bytes,
    at: Instant,
}

impl Kept {
    fn size(&self) -> usize {
        KEPT_OVERHEAD + self.name.len() + self.payload.len()
    }
}

/// What this node emitted lately, by name and number.
pub(crate) struct Window {
    max_bytes: usize,
    max_age: Duration,
    /// Every kept event, oldest first.
    kept: VecDeque<Kept>,
    /// The position (counted from the first event ever kept) of `kept[0]`.
    first: u64,
    /// Per name (a slot each), the positions of its kept events, oldest first.
    slots: Vec<VecDeque<u64>>,
    slot_of: HashMap<Arc<str>, usize>,
    /// The name kept last and its slot: a run of one name looks nothing up.
    hot: Option<(Arc<str>, usize)>,
    bytes: usize,
}

impl Window {
    /// A window of at most `max_bytes` and `max_age` (0 bytes: keeps nothing).
    pub(crate) fn new(max_bytes: usize, max_age: Duration) -> Self {
        Self {
            max_bytes,
            max_age,
            kept: VecDeque::new(),
            first: 0,
            slots: Vec::new(),
            slot_of: HashMap::default(),
            hot: None,
            bytes: 0,
        }
    }

    /// Keeps event `name` number `seq`, emitted at `now`; the oldest leave if it does not
    /// fit. An event larger than the whole window is not kept.
    pub(crate) fn keep(&mut self, name: &Arc<str>, seq: u64, payload: &Bytes, now: Instant) {
        let kept = Kept {
            name: Arc::clone(name),
            seq,
            payload: payload.clone(),
            at: now,
        };
        let size = kept.size();
        if size > self.max_bytes {
            return;
        }
        let slot = self.slot(name);
        let position = self.first + self.kept.len() as u64;
        self.slots[slot].push_back(position);
        self.kept.push_back(kept);
        self.bytes += size;
        while self.bytes > self.max_bytes {
            self.evict_oldest();
        }
    }

    /// Lets go of what is older than the window's age at `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        while self
            .kept
            .front()
            .is_some_and(|k| now.saturating_duration_since(k.at) >= self.max_age)
        {
            self.evict_oldest();
        }
    }

    /// When the oldest kept event is due to leave.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.kept.front().map(|k| k.at + self.max_age)
    }

    /// The payload of event `name` number `seq`, if it is still kept.
    pub(crate) fn get(&self, name: &str, seq: u64) -> Option<&Bytes> {
        let positions = &self.slots[*self.slot_of.get(name)?];
        let at = positions
            .binary_search_by_key(&seq, |p| self.at(*p).seq)
            .ok()?;
        Some(&self.at(positions[at]).payload)
    }

    /// The lowest and highest numbers of `name` kept, if any.
    pub(crate) fn kept_range(&self, name: &str) -> Option<(u64, u64)> {
        let positions = &self.slots[*self.slot_of.get(name)?];
        let first = self.at(*positions.front()?).seq;
        let last = self.at(*positions.back()?).seq;
        Some((first, last))
    }

    /// How many bytes are kept.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn at(&self, position: u64) -> &Kept {
        // Positions in a slot are of kept events: `first` <= position < first + len.
        &self.kept[usize::try_from(position - self.first).unwrap_or(usize::MAX)]
    }

    fn slot(&mut self, name: &Arc<str>) -> usize {
        if let Some((hot, slot)) = &self.hot
            && (Arc::ptr_eq(hot, name) || **hot == **name)
        {
            return *slot;
        }
        let slot = match self.slot_of.get(&**name) {
            Some(&slot) => slot,
            None => {
                self.slots.push(VecDeque::new());
                self.slot_of.insert(Arc::clone(name), self.slots.len() - 1);
                self.slots.len() - 1
            }
        };
        self.hot = Some((Arc::clone(name), slot));
        slot
    }

    fn evict_oldest(&mut self) {
        let Some(oldest) = self.kept.pop_front() else {
            return;
        };
        self.bytes -= oldest.size();
        // The oldest event overall is the oldest of its name.
        if let Some(&slot) = self.slot_of.get(&oldest.name) {
            self.slots[slot].pop_front();
        }
        self.first += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn keeps_by_name_and_number_and_lets_the_oldest_go_first() {
        let now = Instant::now();
        let per_event = KEPT_OVERHEAD + 1 + 3;
        let mut window = Window::new(per_event * 3, Duration::from_secs(10));
        let (a, b) = (name("a"), name("b"));
        window.keep(&a, 1, &Bytes::from_static(b"a-1"), now);
        window.keep(&b, 1, &Bytes::from_static(b"b-1"), now);
        window.keep(&a, 2, &Bytes::from_static(b"a-2"), now);
        assert_eq!(window.get("a", 1).map(|p| &p[..]), Some(&b"a-1"[..]));
        assert_eq!(window.get("b", 1).map(|p| &p[..]), Some(&b"b-1"[..]));
        assert_eq!(window.get("a", 3), None);
        assert_eq!(window.get("c", 1), None);
        window.keep(&a, 3, &Bytes::from_static(b"a-3"), now);
        assert_eq!(window.get("a", 1), None, "the oldest left");
        assert_eq!(window.get("b", 1).map(|p| &p[..]), Some(&b"b-1"[..]));
        assert_eq!(window.get("a", 3).map(|p| &p[..]), Some(&b"a-3"[..]));
        assert_eq!(window.bytes(), per_event * 3);
    }

    #[test]
    fn events_leave_at_their_age_and_nothing_is_kept_in_no_window() {
        let now = Instant::now();
        let mut window = Window::new(1 << 20, Duration::from_secs(1));
        let a = name("a");
        window.keep(&a, 1, &Bytes::from_static(b"x"), now);
        window.keep(
            &a,
            2,
            &Bytes::from_static(b"y"),
            now + Duration::from_millis(500),
        );
        assert_eq!(window.next_deadline(), Some(now + Duration::from_secs(1)));
        window.expire(now + Duration::from_secs(1));
        assert_eq!(window.get("a", 1), None);
        assert!(window.get("a", 2).is_some());
        window.expire(now + Duration::from_secs(2));
        assert_eq!(window.bytes(), 0);
        assert_eq!(window.next_deadline(), None);

        let mut none = Window::new(0, Duration::from_secs(1));
        none.keep(&a, 1, &Bytes::from_static(b"x"), now);
        assert_eq!(none.get("a", 1), None);
        assert_eq!(none.bytes(), 0);
    }
}
