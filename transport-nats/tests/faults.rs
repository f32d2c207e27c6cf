//! The fault cases on a NATS bus: a crashed subscriber, and the server restarted, under load.
mod support;
demitter_conformance::fault_suite!(support::NatsClusterFactory::PLAIN; requires demitter_conformance::nats_server::available);
