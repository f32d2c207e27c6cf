//! Who watches which listener count, and the count each was last told.

use crate::error::Error;
use crate::pattern::Pattern;

/// What a listener count counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountSubject {
    /// Listeners whose pattern matches this event name.
    Name(String),
    /// Listeners registered on exactly this wildcard pattern.
    Pattern(Pattern),
    /// Responders that serve this request name.
    Responders(String),
}

impl CountSubject {
    /// An event name counts the listeners it would reach; a wildcard pattern counts the
    /// listeners registered on exactly it.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let pattern = Pattern::new(text)?;
        Ok(if pattern.is_exact() {
            CountSubject::Name(text.to_owned())
        } else {
            CountSubject::Pattern(pattern)
        })
    }

    /// The responders that serve the request name `name`.
    pub fn responders(name: &str) -> Self {
        CountSubject::Responders(name.to_owned())
    }
}

struct Observer {
    id: u64,
    subject: CountSubject,
    last: usize,
}

#[derive(Default)]
pub(crate) struct Observers {
    watching: Vec<Observer>,
    next_id: u64,
}

impl Observers {
    pub(crate) fn add(&mut self, subject: CountSubject, now: usize) -> u64 {
        self.next_id += 1;
        self.watching.push(Observer {
            id: self.next_id,
            subject,
            last: now,
        });
        self.next_id
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.watching.retain(|o| o.id != id);
    }

    /// Calls `changed(id, count)` for every observer whose count is no longer the one it
    /// was told, after recording the new one.
    pub(crate) fn update(
        &mut self,
        count: impl Fn(&CountSubject) -> usize,
        mut changed: impl FnMut(u64, usize),
    ) {
        for o in &mut self.watching {
            let now = count(&o.subject);
            if now != o.last {
                o.last = now;
                changed(o.id, now);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.watching.clear();
    }
}
