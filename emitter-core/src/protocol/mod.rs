//! The presence protocol and sequencing: pure state machines, fed frames and time, that
//! every transport gets by moving frames. Nothing here does I/O or spawns tasks.

mod control;
mod interest;
mod presence;
pub(crate) mod remote_interest;
mod sequence;

pub use control::{
    Control, Covered, InterestEntry, RepairedEvent, ReplyOutcome, RetainedValue, Role, SequenceMark,
};
pub use interest::Interest;
pub use presence::{Action, Presence, PresenceConfig};
pub use sequence::{MAX_MARKS_PER_MESSAGE, SeqCheck, SequenceCounter, SequenceTracker};
