//! Faults under steady load on a QUIC mesh: a peer crashes and restarts.
mod support;
demitter_conformance::fault_suite!(support::QuicClusterFactory);
