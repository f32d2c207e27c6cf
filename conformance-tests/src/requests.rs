//! The request/reply cases: each request reaches exactly one responder, chosen in turn; the
//! reply reaches the requester alone; and each way a request can fail is its own error.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use demitter_core::{Error, Event};
use tokio::sync::{Semaphore, mpsc};

use crate::cluster::{Cluster, ClusterFactory};
use crate::support::{cluster, within};

/// Long enough never to be what ends a request in these cases.
const PATIENT: Duration = Duration::from_secs(60);

/// 18. Requests go to one responder at a time, in turn among the nodes that serve the
///     name (the requester's own node among them), and the reply comes from that
///     responder's node.
pub async fn requests_go_to_one_responder_in_turn<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 3).await;
    let (served_tx, mut served) = mpsc::unbounded_channel();
    let mut responders = Vec::new();
    for i in [1, 2] {
        let me = c.node(i).id().to_string();
        let served_tx = served_tx.clone();
        responders.push(
            c.node(i)
                .serve("conf.req.+", move |request: Event<u32>| {
                    let (me, served_tx) = (me.clone(), served_tx.clone());
                    async move {
                        let _ = served_tx.send(me.clone());
                        Ok::<_, String>(format!("{me}:{}", request.data * 2))
                    }
                })
                .expect("valid"),
        );
    }
    within(
        "node 0 to know both responders",
        c.node(0).wait_for_responders("conf.req.who", 2),
    )
    .await
    .expect("open");
    let mut answered = BTreeMap::new();
    for i in 0..4u32 {
        let reply = within(
            "a reply",
            c.node(0).request::<_, String>("conf.req.who", &i, PATIENT),
        )
        .await
        .expect("answered");
        assert_eq!(&*reply.name, "conf.req.who");
        assert_eq!(
            reply.data,
            format!("{}:{}", reply.source, i * 2),
            "the reply comes from the responder that computed it"
        );
        *answered.entry(reply.source.to_string()).or_insert(0) += 1;
    }
    let mut calls = BTreeMap::new();
    while let Ok(who) = served.try_recv() {
        *calls.entry(who).or_insert(0) += 1;
    }
    let expected: BTreeMap<String, i32> = [c.node(1), c.node(2)]
        .iter()
        .map(|n| (n.id().to_string(), 2))
        .collect();
    assert_eq!(answered, expected, "in turn: two each");
    assert_eq!(calls, expected, "each request ran once, on one responder");

    // From a node that serves too: its own responder takes its turn.
    within(
        "node 1 to know node 2's responder",
        c.node(1).wait_for_responders("conf.req.who", 2),
    )
    .await
    .expect("open");
    let mut sources = Vec::new();
    for i in 0..2u32 {
        let reply = within(
            "a reply",
            c.node(1).request::<_, String>("conf.req.who", &i, PATIENT),
        )
        .await
        .expect("answered");
        sources.push(reply.source.to_string());
    }
    sources.sort();
    let mut both = vec![c.node(1).id().to_string(), c.node(2).id().to_string()];
    both.sort();
    assert_eq!(sources, both);
    within("the cluster to shut down", c.shutdown()).await;
}

/// 19. Each way a request fails is its own error, and comes as soon as it is known: no
///     responder at once, a failing handler with its error, a request the responder
///     cannot decode with why, no answer after the timeout (a late answer is dropped).
pub async fn requests_fail_each_in_its_own_way<F: ClusterFactory>(factory: &F) {
    let c = cluster(factory, 2).await;
    let no_one = within(
        "a request nobody serves",
        c.node(0).request::<_, u32>("conf.req.none", &1u32, PATIENT),
    )
    .await;
    assert!(
        matches!(&no_one, Err(Error::NoResponder { name }) if name == "conf.req.none"),
        "{no_one:?}"
    );

    let _stock = c
        .node(1)
        .serve("conf.req.stock", |request: Event<String>| async move {
            if request.data == "apples" {
                Ok(7u32)
            } else {
                Err(format!("out of {}", request.data))
            }
        })
        .expect("valid");
    let gate = Arc::new(Semaphore::new(0));
    let held = Arc::clone(&gate);
    let _slow = c
        .node(1)
        .serve("conf.req.slow", move |_: Event<u32>| {
            let held = Arc::clone(&held);
            async move {
                let _ = held.acquire().await;
                Ok::<_, String>(1u32)
            }
        })
        .expect("valid");
    for name in ["conf.req.stock", "conf.req.slow"] {
        within(
            "node 0 to know the responders",
            c.node(0).wait_for_responders(name, 1),
        )
        .await
        .expect("open");
    }
    let node1 = c.node(1).id().to_string();

    let apples = within(
        "a request that succeeds",
        c.node(0)
            .request::<_, u32>("conf.req.stock", "apples", PATIENT),
    )
    .await
    .expect("answered");
    assert_eq!(apples.data, 7);
    let pears = within(
        "a request the handler refuses",
        c.node(0)
            .request::<_, u32>("conf.req.stock", "pears", PATIENT),
    )
    .await;
    assert!(
        matches!(&pears, Err(Error::ResponderFailed { responder, message })
            if *responder == node1 && message == "out of pears"),
        "{pears:?}"
    );
    let garbled = within(
        "a request the responder cannot decode",
        c.node(0)
            .request::<_, u32>("conf.req.stock", &[1u8, 2, 3], PATIENT),
    )
    .await;
    assert!(
        matches!(&garbled, Err(Error::ResponderFailed { message, .. }) if message.contains("decode")),
        "{garbled:?}"
    );
    let late = within(
        "a request that times out",
        c.node(0)
            .request::<_, u32>("conf.req.slow", &1u32, Duration::from_millis(300)),
    )
    .await;
    assert!(
        matches!(&late, Err(Error::RequestTimedOut { after, .. }) if *after == Duration::from_millis(300)),
        "{late:?}"
    );
    // The late answer arrives to nobody; the next request is answered as usual.
    gate.add_permits(2);
    let next = within(
        "the next request",
        c.node(0).request::<_, u32>("conf.req.slow", &2u32, PATIENT),
    )
    .await
    .expect("answered");
    assert_eq!(next.data, 1);
    within("the cluster to shut down", c.shutdown()).await;
}

/// 20. A responder's node lost while it handles a request fails the request as soon as
///     the requester knows the node is down, long before the timeout; its answer, had it
///     come, would have reached nobody.
pub async fn a_responder_lost_mid_request_fails_it<F: ClusterFactory>(factory: &F) {
    let mut c = cluster(factory, 2).await;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    // The handler holds the request until the test lets it go (after the requester has
    // given up on it), so that killing the node cannot wait for it.
    let gate = Arc::new(Semaphore::new(0));
    let held = Arc::clone(&gate);
    let _hanging = c
        .node(1)
        .serve("conf.req.hang", move |_: Event<u32>| {
            let (started_tx, held) = (started_tx.clone(), Arc::clone(&held));
            async move {
                let _ = started_tx.send(());
                let _ = held.acquire().await;
                Ok::<_, String>(0u32)
            }
        })
        .expect("valid");
    within(
        "node 0 to know the responder",
        c.node(0).wait_for_responders("conf.req.hang", 1),
    )
    .await
    .expect("open");
    let node1 = c.node(1).id().to_string();
    let requester = c.node(0).clone();
    let request = tokio::spawn(async move {
        requester
            .request::<_, u32>("conf.req.hang", &1u32, PATIENT)
            .await
    });
    within("the responder to start on the request", started.recv())
        .await
        .expect("started");
    let ((), lost) = tokio::join!(within("node 1 to be killed", c.kill(1)), async {
        let lost = within("the request to fail", request)
            .await
            .expect("the request task ran");
        gate.add_permits(1);
        lost
    });
    assert!(
        matches!(&lost, Err(Error::ResponderLost { responder }) if *responder == node1),
        "{lost:?}"
    );
    within("the cluster to shut down", c.shutdown()).await;
}
