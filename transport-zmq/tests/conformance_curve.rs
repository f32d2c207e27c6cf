//! The whole conformance suite through a CURVE forwarder on loopback: every node on its
//! own key, and the forwarder checking that each emits only under its key's name.
mod support;
demitter_conformance::conformance_suite!(support::ZmqClusterFactory::CURVE);
