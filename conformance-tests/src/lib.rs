//! One behaviour suite that every demitter transport runs.
//!
//! Each case in [`cases`] is a plain `pub async fn` taking a [`ClusterFactory`]: something
//! that starts N emitters on one transport and offers hooks to kill or restart a node or
//! the hub and to inject a raw frame. What a transport cannot do it declares in
//! [`ClusterCapabilities`], and the case checks that declaration instead; no case is ever
//! skipped. A transport's whole test file is one line:
//!
//! ```no_run
//! // tests/conformance.rs
//! demitter_conformance::conformance_suite!(demitter_conformance::MemoryClusterFactory);
//! # fn main() {}
//! ```
//!
//! The macro expands to one `#[tokio::test]` per case, so the calling crate needs `tokio`
//! (features `macros`, `rt-multi-thread`) as a dev-dependency.

pub mod allocation;
pub mod cases;
pub mod child;
mod cluster;
mod congestion;
mod duplicates;
pub mod faults;
mod groups;
mod lost_on_the_way;
mod memory;
pub mod nats_server;
#[cfg(target_os = "linux")]
pub mod netns;
mod recovery;
mod requests;
mod retained;
mod short_lived;
pub mod soak;
pub mod support;

pub use cluster::{Cluster, ClusterCapabilities, ClusterFactory};
pub use memory::{MemoryCluster, MemoryClusterFactory};
pub use support::{STEP_TIMEOUT, test_config};

/// Expands to one `#[tokio::test]` per conformance case, each run on clusters from
/// `$factory` (an expression whose type implements [`ClusterFactory`]).
///
/// `conformance_suite!(FACTORY; requires CHECK)` first calls `CHECK(case_name) -> bool`
/// in each test: a transport whose tests need something from outside (a server binary)
/// prints `SKIPPED:` and why there, and the case returns without running.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!($factory; requires $crate::always_available);
    };
    ($factory:expr; requires $available:path) => {
        $crate::conformance_suite!(@cases $factory; $available;
            emit_reaches_every_other_node,
            own_listeners_run_exactly_once,
            pattern_routing_follows_the_vectors,
            unsubscribe_stops_delivery,
            counts_follow_remote_listeners,
            once_and_events_across_nodes,
            order_per_source_and_name,
            payloads_survive_the_trip,
            departed_nodes_leave_the_counts,
            slow_listener_lags_alone,
            hostile_input_is_reported_and_survived,
            invalid_names_and_patterns_are_errors,
            close_ends_everything,
            close_runs_what_arrived,
            hub_restart_resumes_traffic,
            congestion_block_holds_the_emitter_back,
            congestion_drop_reports_what_it_drops,
            requests_go_to_one_responder_in_turn,
            requests_fail_each_in_its_own_way,
            a_responder_lost_mid_request_fails_it,
            a_late_listener_gets_the_last_values_first,
            a_late_listener_during_a_burst_misses_nothing,
            a_dead_node_takes_its_values_with_it,
            groups_give_each_event_to_one_member,
            a_group_member_killed_under_steady_load,
            short_lived_emitters_reach_every_listener,
            a_lost_first_event_is_reported,
            a_tail_whose_marks_are_lost_for_long_is_reported,
            duplicate_ids_are_refused,
            lost_events_are_recovered_in_order,
            a_closing_emitter_lingers_until_its_last_events_are_repaired,
        );
    };
    (@cases $factory:expr; $available:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if !$available(stringify!($case)) {
                    return;
                }
                $crate::cases::$case(&$factory).await;
            }
        )*
    };
}

/// What [`conformance_suite!`] checks when a transport needs nothing from outside.
#[doc(hidden)]
pub fn always_available(_test: &str) -> bool {
    true
}

/// Expands to the fault cases of [`faults`] as `#[tokio::test]`s on clusters from
/// `$factory`, each printing its figures (run with `--nocapture` to see them).
/// `fault_suite!(FACTORY; requires CHECK)` checks first, as [`conformance_suite!`] does.
#[macro_export]
macro_rules! fault_suite {
    ($factory:expr) => {
        $crate::fault_suite!($factory; requires $crate::always_available);
    };
    ($factory:expr; requires $available:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_crashed_subscriber_recovers_under_load() {
            if !$available("a_crashed_subscriber_recovers_under_load") {
                return;
            }
            let figures = $crate::faults::a_crashed_subscriber_recovers_under_load(&$factory).await;
            println!("{figures:?}");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_restarted_hub_recovers_under_load() {
            if !$available("a_restarted_hub_recovers_under_load") {
                return;
            }
            match $crate::faults::a_restarted_hub_recovers_under_load(&$factory).await {
                Some(figures) => println!("{figures:?}"),
                None => println!("no hub (declared): the restart was refused, as it must be"),
            }
        }
    };
}
