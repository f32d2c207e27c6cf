//! Faults under steady load through a real forwarder: a subscriber crashes and restarts,
//! the forwarder restarts.
mod support;
demitter_conformance::fault_suite!(support::ZmqClusterFactory::NULL);
