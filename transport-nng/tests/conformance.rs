//! The whole conformance suite on a bus of nng nodes on loopback.
mod support;
demitter_conformance::conformance_suite!(support::NngClusterFactory);
