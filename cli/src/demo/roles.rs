//! The demo's participants, each a process of its own: the auctioneer, the bidders and
//! the spectator. They talk only through the bus.

use std::collections::HashMap;
use std::pin::pin;
use std::time::Duration;

use demitter::{Emitter, ListenOptions, RawPayload};
use tokio::time::{Instant, sleep_until};

use crate::bus::BusArgs;
use crate::demo::protocol::{
    BID_PREFIX, BIDS, Bid, DONE_PREFIX, Done, EVERYTHING, ITEMS, LATE, LOT_OPEN, LOT_SOLD, LOTS,
    Lot, Report, STOP, Sold, bid_event, done_event, wall_ns,
};
use crate::error::CliError;

/// How long the auctioneer waits for every bidder to listen.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A lot closes this long after its last bid...
const QUIET: Duration = Duration::from_millis(350);
/// ...or this long after it opened.
const LOT_TIME: Duration = Duration::from_millis(1500);
/// How long the spectator waits, after the stop, for every bidder's last word.
const DONE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who a participant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Role {
    Auctioneer,
    Bidder,
    Spectator,
}

/// A participant's settings (given by `demitter demo`).
#[derive(Debug, clap::Args)]
pub(crate) struct RoleArgs {
    #[arg(long, value_enum)]
    pub(crate) role: Role,
    #[arg(long)]
    pub(crate) name: String,
    /// Which bidder (its strategy).
    #[arg(long, default_value_t = 0)]
    pub(crate) index: usize,
    /// How many bidders there are.
    #[arg(long)]
    pub(crate) bidders: usize,
    #[command(flatten)]
    pub(crate) bus: BusArgs,
}

pub(crate) async fn run(args: RoleArgs) -> Result<(), CliError> {
    exit_with_parent();
    let emitter = args.bus.connect_quietly().await?.emitter;
    let result = match args.role {
        Role::Auctioneer => auctioneer(&emitter, &args).await,
        Role::Bidder => bidder(&emitter, &args).await,
        Role::Spectator => spectator(&emitter, &args).await,
    };
    let report = result.map(|mut report| {
        let counts = emitter.error_counts();
        report.lost = counts.gap + counts.lagged;
        report
    });
    emitter.close().await;
    let report = report?;
    println!(
        "{}",
        serde_json::to_string(&report).map_err(CliError::Json)?
    );
    Ok(())
}

/// The demo keeps each participant's stdin open; when it closes, the demo process is gone
/// (killed, perhaps) and this one must not linger waiting for a stop that will not come.
fn exit_with_parent() {
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        loop {
            match std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                Ok(0) | Err(_) => {
                    eprintln!("the demo that started this participant is gone; stopping");
                    std::process::exit(1);
                }
                Ok(_) => {}
            }
        }
    });
}

/// Waits until this participant knows every participant's listeners. Each one listens on
/// [`STOP`] last, after its other listeners, so a node that knows everyone's `STOP`
/// listener knows all of their listeners and sends them what they listen for: a bid
/// emitted before a bidder knew of the spectator would reach only the others, and the
/// spectator could not tell (it never heard of that bid's number), so nobody starts
/// before. On a mesh this also means every link is up.
async fn everyone_known(emitter: &Emitter, args: &RoleArgs) -> Result<(), CliError> {
    let participants = args.bidders + 2;
    tokio::time::timeout(JOIN_TIMEOUT, emitter.wait_for_listeners(STOP, participants))
        .await
        .map_err(|_| {
            CliError::Demo(format!(
                "{} did not get to know all {participants} participants within {JOIN_TIMEOUT:?}",
                args.name
            ))
        })??;
    Ok(())
}

/// Opens lots one after another until told to stop; a lot goes to the highest bid that
/// arrived while it was open ([`RULE`](crate::demo::protocol::RULE)); a bid for a lot that
/// is not open is refused, in public ([`LATE`]).
async fn auctioneer(emitter: &Emitter, args: &RoleArgs) -> Result<Report, CliError> {
    let mut bids = emitter.events::<Bid>(BIDS)?;
    let mut stop = pin!(emitter.once::<()>(STOP)?);
    everyone_known(emitter, args).await?;
    let mut report = Report {
        role: "auctioneer".into(),
        name: args.name.clone(),
        ..Report::default()
    };
    let mut lot_number = 0u32;
    'lots: loop {
        lot_number += 1;
        let lot = Lot {
            number: lot_number,
            item: ITEMS[lot_number as usize % ITEMS.len()].to_owned(),
            start: 50 + u64::from(lot_number % 5) * 25,
            step: 10,
        };
        emitter.emit(LOT_OPEN, &lot).await?;
        let (opened, mut quiet) = (Instant::now(), Instant::now() + QUIET * 2);
        let mut best: Option<Bid> = None;
        let mut count = 0u32;
        let stopping = loop {
            tokio::select! {
                _ = &mut stop => break true,
                () = sleep_until(quiet.min(opened + LOT_TIME)) => break false,
                bid = bids.recv() => {
                    let Some(Ok(bid)) = bid else { continue };
                    report.bids_seen += 1;
                    if bid.lot != lot.number {
                        emitter.emit(LATE, &bid.data).await?;
                        continue;
                    }
                    count += 1;
                    quiet = Instant::now() + QUIET;
                    if best.as_ref().is_none_or(|b| bid.data.amount > b.amount) {
                        best = Some(bid.data);
                    }
                }
            }
        };
        let sold = Sold {
            lot: lot.number,
            item: lot.item,
            amount: best.as_ref().map_or(0, |b| b.amount),
            winner: best.map(|b| b.bidder),
            bids: count,
        };
        if sold.winner.is_some() {
            report.lots_sold += 1;
        }
        emitter.emit(LOT_SOLD, &sold).await?;
        if stopping {
            break 'lots;
        }
        // A pause between lots, in which every bid is late.
        let next_lot = Instant::now() + Duration::from_millis(200);
        loop {
            tokio::select! {
                _ = &mut stop => break 'lots,
                () = sleep_until(next_lot) => break,
                bid = bids.recv() => {
                    let Some(Ok(bid)) = bid else { continue };
                    report.bids_seen += 1;
                    emitter.emit(LATE, &bid.data).await?;
                }
            }
        }
    }
    Ok(report)
}

/// How a bidder bids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// Outbids anyone at once, up to its limit.
    Eager,
    /// Waits, then bids once, high.
    Sniper,
    /// Only bids while the price is low.
    Frugal,
    /// Outbids now and then.
    Fickle,
}

impl Strategy {
    fn of(index: usize) -> Self {
        [Self::Eager, Self::Sniper, Self::Frugal, Self::Fickle][index % 4]
    }
}

/// The lot a bidder is bidding on.
struct Bidding {
    lot: Lot,
    limit: u64,
    best: u64,
    leader: Option<String>,
}

/// Bids on every lot by its strategy until told to stop, then says how many bids it sent.
async fn bidder(emitter: &Emitter, args: &RoleArgs) -> Result<Report, CliError> {
    let strategy = Strategy::of(args.index);
    let mut bids = emitter.events::<Bid>(BIDS)?;
    let mut lots = emitter.events::<RawPayload>(LOTS)?;
    let mut stop = pin!(emitter.once::<()>(STOP)?);
    everyone_known(emitter, args).await?;
    let me = args.name.clone();
    let my_event = bid_event(&me);
    let mut sent = 0u64;
    let mut current: Option<Bidding> = None;
    let mut next_bid: Option<Instant> = None;
    loop {
        let wake = next_bid.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = &mut stop => break,
            lot = lots.recv() => {
                let Some(Ok(event)) = lot else { continue };
                if &*event.name == LOT_OPEN {
                    let Ok(lot) = event.data.decode::<Lot>() else { continue };
                    let limit = lot.start * (15 + fastrand::u64(0..25)) / 10;
                    next_bid = match strategy {
                        Strategy::Sniper => Some(Instant::now() + Duration::from_millis(250 + fastrand::u64(0..200))),
                        Strategy::Fickle if fastrand::bool() => None,
                        _ => Some(Instant::now() + Duration::from_millis(fastrand::u64(5..60))),
                    };
                    current = Some(Bidding { best: lot.start.saturating_sub(lot.step), lot, limit, leader: None });
                } else {
                    current = None;
                    next_bid = None;
                }
            }
            bid = bids.recv() => {
                let Some(Ok(bid)) = bid else { continue };
                let Some(bidding) = current.as_mut() else { continue };
                if bid.data.lot != bidding.lot.number || bid.data.amount <= bidding.best {
                    continue;
                }
                bidding.best = bid.data.amount;
                bidding.leader = Some(bid.data.bidder.clone());
                if bid.data.bidder != me && next_bid.is_none() {
                    let answer = match strategy {
                        Strategy::Eager => true,
                        Strategy::Frugal => bidding.best * 10 < bidding.limit * 7,
                        Strategy::Fickle => fastrand::u8(0..10) < 4,
                        Strategy::Sniper => false,
                    };
                    if answer {
                        next_bid = Some(Instant::now() + Duration::from_millis(fastrand::u64(10..80)));
                    }
                }
            }
            () = sleep_until(wake), if next_bid.is_some() => {
                next_bid = None;
                let Some(bidding) = current.as_mut() else { continue };
                let raise = if strategy == Strategy::Sniper { 3 } else { 1 };
                let amount = bidding.best + raise * bidding.lot.step;
                if bidding.leader.as_deref() == Some(me.as_str()) || amount > bidding.limit {
                    continue;
                }
                let bid = Bid { lot: bidding.lot.number, bidder: me.clone(), amount, sent_ns: wall_ns() };
                emitter.emit(&my_event, &bid).await?;
                sent += 1;
            }
        }
    }
    // After the last bid, from the same sender: whoever hears this has heard them all.
    emitter
        .emit(
            &done_event(&me),
            &Done {
                bidder: me.clone(),
                bids: sent,
            },
        )
        .await?;
    Ok(Report {
        role: "bidder".into(),
        name: me,
        bids_sent: sent,
        ..Report::default()
    })
}

/// Watches everything (as a spy, counted nowhere) and counts the bids it saw from each
/// bidder; after the stop, waits until every bidder's count is in.
async fn spectator(emitter: &Emitter, args: &RoleArgs) -> Result<Report, CliError> {
    let mut all = emitter.events_with::<RawPayload>(EVERYTHING, ListenOptions::default().spy())?;
    let mut stop = pin!(emitter.once::<()>(STOP)?);
    everyone_known(emitter, args).await?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut done: HashMap<String, u64> = HashMap::new();
    let mut stopped: Option<Instant> = None;
    loop {
        if stopped.is_some() && done.len() >= args.bidders {
            break;
        }
        let give_up = stopped.map_or_else(
            || Instant::now() + Duration::from_secs(3600),
            |at| at + DONE_TIMEOUT,
        );
        tokio::select! {
            _ = &mut stop, if stopped.is_none() => stopped = Some(Instant::now()),
            () = sleep_until(give_up), if stopped.is_some() => break,
            event = all.recv() => {
                let Some(Ok(event)) = event else { continue };
                if event.name.starts_with(BID_PREFIX) {
                    if let Ok(bid) = event.data.decode::<Bid>() {
                        *seen.entry(bid.bidder).or_default() += 1;
                    }
                } else if event.name.starts_with(DONE_PREFIX)
                    && let Ok(last) = event.data.decode::<Done>()
                {
                    done.insert(last.bidder, last.bids);
                }
            }
        }
    }
    Ok(Report {
        role: "spectator".into(),
        name: args.name.clone(),
        bids_seen: seen.values().sum(),
        bids_sent: done.values().sum(),
        ..Report::default()
    })
}
