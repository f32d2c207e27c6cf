//! The whole conformance suite on the in-memory hub: the reference every transport is held
//! to.
demitter_conformance::conformance_suite!(demitter_conformance::MemoryClusterFactory);
