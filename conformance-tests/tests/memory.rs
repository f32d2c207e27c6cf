//! The whole conformance suite on the in-memory transport.
demitter_conformance::conformance_suite!(demitter_conformance::MemoryClusterFactory);
