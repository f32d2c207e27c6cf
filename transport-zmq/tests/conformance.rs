//! The whole conformance suite through a real forwarder on loopback.
mod support;
demitter_conformance::conformance_suite!(support::ZmqClusterFactory::NULL);
