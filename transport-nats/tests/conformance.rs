//! The whole conformance suite on a bus of emitters on one `nats-server`.
mod support;
demitter_conformance::conformance_suite!(support::NatsClusterFactory::PLAIN; requires demitter_conformance::nats_server::available);
