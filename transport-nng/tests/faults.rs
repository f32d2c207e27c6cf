//! Faults under steady load on an nng bus: a node crashes and restarts.
mod support;
demitter_conformance::fault_suite!(support::NngClusterFactory);
