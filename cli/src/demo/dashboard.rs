//! The live dashboard on a terminal (ratatui): the current lot, its bids as they arrive,
//! the leader, events per second, bid latency, peers connected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event as TermEvent};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style, Stylize as _};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::demo::stats::Stats;
use crate::error::CliError;

/// Redraws per second.
const FRAME: Duration = Duration::from_millis(100);

/// Draws `stats` until `deadline`, a key press or a signal, whichever comes first; `watch`
/// is the command that watches the same bus from another terminal.
pub(crate) async fn show(
    stats: &Arc<Mutex<Stats>>,
    title: &str,
    watch: &str,
    deadline: Instant,
) -> Result<(), CliError> {
    let mut terminal = ratatui::try_init().map_err(CliError::io("opening the terminal"))?;
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Ok(());
        }
        if let Err(e) = terminal.draw(|frame| draw(frame, &stats.lock(), title, watch, left)) {
            break Err(CliError::Io {
                what: "drawing the dashboard".into(),
                source: e,
            });
        }
        match event::poll(Duration::ZERO) {
            Ok(true) => {
                if let Ok(TermEvent::Key(_)) = event::read() {
                    break Ok(());
                }
            }
            Ok(false) => {}
            Err(e) => break Err(CliError::io("reading the keyboard")(e)),
        }
        tokio::select! {
            () = tokio::time::sleep(FRAME) => {}
            _ = crate::interrupt::requested() => break Ok(()),
        }
    };
    ratatui::restore();
    result
}

/// The auction's rule, short enough for an 80-column header.
const RULE_LINE: &str =
    "Rule: highest bid received while the lot is open wins; late bids are refused";

/// One frame of the dashboard.
pub(crate) fn draw(frame: &mut Frame<'_>, stats: &Stats, title: &str, watch: &str, left: Duration) {
    // The header: four lines, the watch command (wrapped on a narrow terminal), borders.
    let inner_width = usize::from(frame.area().width.saturating_sub(2)).max(1);
    let watch_rows =
        u16::try_from(watch.chars().count().div_ceil(inner_width).max(1)).unwrap_or(u16::MAX);
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(6 + watch_rows),
        Constraint::Min(8),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [bids_area, numbers_area] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(middle);

    frame.render_widget(
        Paragraph::new(header(stats, watch))
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(format!(" {title} ")))
            .style(Style::new()),
        top,
    );

    let bid_lines: Vec<Line<'_>> = stats
        .bids
        .iter()
        .map(|shown| {
            let text = format!("{:<12} {:>6}", shown.bid.bidder, shown.bid.amount);
            if shown.late {
                Line::from(format!("{text}  late, refused")).dim()
            } else {
                Line::from(text)
            }
        })
        .collect();
    frame.render_widget(
        Paragraph::new(bid_lines).block(Block::bordered().title(" Bids, newest first ")),
        bids_area,
    );

    let numbers = vec![
        Line::from(format!("events/s      {}", stats.rate())),
        Line::from(format!("latency p50   {} µs", stats.latency_us(0.5))),
        Line::from(format!("latency p99   {} µs", stats.latency_us(0.99))),
        Line::from(format!("lots sold     {}", stats.lots_sold)),
        Line::from(format!("bids          {}", stats.bids_total)),
        Line::from(format!("late bids     {}", stats.late_bids)),
        Line::from(format!("peers         {}", stats.peers)),
    ];
    frame.render_widget(
        Paragraph::new(numbers).block(Block::bordered().title(" Bus ")),
        numbers_area,
    );
    frame.render_widget(
        Line::from(format!(
            "Any key stops the demo · ends by itself in {} s",
            left.as_secs()
        ))
        .dim(),
        bottom,
    );
}

/// The header: the lot (open, or just sold), its leader, the last sale, the rule, and
/// how to watch the bus from another terminal.
fn header(stats: &Stats, watch: &str) -> Vec<Line<'static>> {
    let sold = |s: &crate::demo::protocol::Sold| match &s.winner {
        Some(w) => format!("sold to {w} for {}", s.amount),
        None => "not sold".to_owned(),
    };
    let (lot, leader) = match (&stats.lot, stats.open, &stats.last_sold) {
        (Some(lot), true, _) => (
            format!("Lot {}: {} (opened at {})", lot.number, lot.item, lot.start),
            match &stats.leader {
                Some((who, amount)) => format!("Leader: {who} at {amount}"),
                None => "Leader: no bid yet".to_owned(),
            },
        ),
        (Some(lot), false, Some(last)) => (
            format!("Lot {}: {}, {}", lot.number, lot.item, sold(last)),
            "The next lot opens shortly…".to_owned(),
        ),
        _ => ("Waiting for the first lot…".to_owned(), String::new()),
    };
    let last = stats.last_sold.as_ref().map_or_else(String::new, |s| {
        format!("Last sale: lot {} {} after {} bids", s.lot, sold(s), s.bids)
    });
    vec![
        Line::from(lot).add_modifier(Modifier::BOLD),
        Line::from(leader),
        Line::from(last),
        Line::from(RULE_LINE).dim(),
        Line::from(watch.to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::protocol::{Bid, Lot, Sold};
    use crate::demo::stats::ShownBid;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    const WATCH: &str = "Watch: demitter tap 'auction.#' -u 'zmq://127.0.0.1:40123?xpub=40124'";

    fn screen(stats: &Stats, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        terminal
            .draw(|frame| {
                draw(
                    frame,
                    stats,
                    "demitter demo",
                    WATCH,
                    Duration::from_secs(12),
                );
            })
            .expect("draws");
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    fn lot(number: u32) -> Lot {
        Lot {
            number,
            item: "First-edition atlas".into(),
            start: 100,
            step: 10,
        }
    }

    fn bid(bidder: &str, amount: u64) -> ShownBid {
        ShownBid {
            bid: Bid {
                lot: 3,
                bidder: bidder.into(),
                amount,
                sent_ns: 0,
            },
            late: false,
        }
    }

    #[test]
    fn the_dashboard_shows_the_lot_a_bid_and_the_rate() {
        let mut stats = Stats::new();
        stats.lot = Some(lot(3));
        stats.open = true;
        stats.bids.push_front(bid("bidder-2", 180));
        stats.leader = Some(("bidder-2".into(), 180));
        let text = screen(&stats, 80, 24);
        assert!(text.contains("Lot 3: First-edition atlas"), "{text}");
        assert!(text.contains("bidder-2        180"), "{text}");
        assert!(text.contains("Leader: bidder-2 at 180"), "{text}");
        assert!(text.contains("events/s"), "{text}");
        assert!(text.contains("late bids"), "{text}");
        assert!(text.contains("ends by itself in 12 s"), "{text}");
        assert!(text.contains(RULE_LINE), "the rule is shown whole: {text}");
        assert!(
            text.contains(WATCH),
            "the command that watches the bus, under the rule: {text}"
        );
    }

    #[test]
    fn at_80_by_24_the_last_sale_is_whole_and_a_sold_lot_is_not_shown_open() {
        let mut stats = Stats::new();
        stats.lot = Some(lot(4));
        stats.open = false;
        stats.last_sold = Some(Sold {
            lot: 4,
            item: "First-edition atlas".into(),
            winner: Some("bidder-4".into()),
            amount: 390,
            bids: 17,
        });
        let text = screen(&stats, 80, 24);
        assert!(
            text.contains("Last sale: lot 4 sold to bidder-4 for 390 after 17 bids"),
            "{text}"
        );
        assert!(
            text.contains("Lot 4: First-edition atlas, sold to bidder-4 for 390"),
            "{text}"
        );
        assert!(!text.contains("Leader:"), "no leader between lots: {text}");
        assert!(text.contains("The next lot opens shortly"), "{text}");
    }

    #[test]
    fn a_tall_terminal_fills_its_bid_panel_and_late_bids_are_marked() {
        let mut stats = Stats::new();
        stats.lot = Some(lot(3));
        stats.open = true;
        for amount in 0..40 {
            stats.bids.push_front(bid("bidder-1", 100 + amount * 10));
        }
        if let Some(first) = stats.bids.front_mut() {
            first.late = true;
        }
        let text = screen(&stats, 100, 30);
        let shown = text.matches("bidder-1").count();
        // 30 rows: a 7-row header, a 1-row footer, the panel's 2 borders.
        assert_eq!(shown, 30 - 7 - 1 - 2, "{text}");
        assert!(text.contains("490  late, refused"), "{text}");
    }
}
