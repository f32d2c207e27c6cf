//! The whole conformance suite on a mesh of QUIC nodes on loopback, with mutual TLS.
mod support;
demitter_conformance::conformance_suite!(support::QuicClusterFactory);
