//! The whole conformance suite on an authenticated bus: mutual TLS to one `nats-server`,
//! each node allowed to publish only on its own subjects.
mod support;
demitter_conformance::conformance_suite!(support::NatsClusterFactory::AUTHENTICATED; requires demitter_conformance::nats_server::available);
