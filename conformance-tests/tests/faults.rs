//! Faults under steady load on the in-memory hub.
demitter_conformance::fault_suite!(demitter_conformance::MemoryClusterFactory);
