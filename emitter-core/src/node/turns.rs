//! Taking turns: the one rotation that requests and listener groups share.

/// The next of `items` after `turn`, which it advances; `None` when there are none.
pub(crate) fn next_in_turn<T: Clone>(turn: &mut usize, items: &[T]) -> Option<T> {
    if items.is_empty() {
        return None;
    }
    *turn = turn.wrapping_add(1);
    Some(items[*turn % items.len()].clone())
}
