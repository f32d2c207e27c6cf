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
use ratatui::widgets::{Block, Paragraph};

use crate::demo::stats::Stats;
use crate::error::CliError;

/// Redraws per second.
const FRAME: Duration = Duration::from_millis(100);

/// Draws `stats` until `deadline` or a key press, whichever comes first.
pub(crate) async fn show(
    stats: &Arc<Mutex<Stats>>,
    title: &str,
    deadline: Instant,
) -> Result<(), CliError> {
    let mut terminal = ratatui::try_init().map_err(CliError::io("opening the terminal"))?;
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Ok(());
        }
        if let Err(e) = terminal.draw(|frame| draw(frame, &stats.lock(), title, left)) {
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
        tokio::time::sleep(FRAME).await;
    };
    ratatui::restore();
    result
}

/// One frame of the dashboard.
pub(crate) fn draw(frame: &mut Frame<'_>, stats: &Stats, title: &str, left: Duration) {
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(8),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [bids_area, numbers_area] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(middle);

    let lot = match &stats.lot {
        Some(lot) => format!("Lot {}: {} (opened at {})", lot.number, lot.item, lot.start),
        None => "Waiting for the first lot…".to_owned(),
    };
    let leader = match &stats.leader {
        Some((who, amount)) => format!("Leader: {who} at {amount}"),
        None => "Leader: no bid yet".to_owned(),
    };
    let sold = stats
        .last_sold
        .as_ref()
        .map_or_else(String::new, |s| match &s.winner {
            Some(w) => format!("Last sold: lot {} to {w} for {}", s.lot, s.amount),
            None => format!("Last: lot {} unsold", s.lot),
        });
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(lot).add_modifier(Modifier::BOLD),
            Line::from(leader),
        ])
        .block(Block::bordered().title(format!(" {title} ")))
        .style(Style::new()),
        top,
    );

    let bid_lines: Vec<Line<'_>> = stats
        .bids
        .iter()
        .map(|b| Line::from(format!("{:<12} {:>6}", b.bidder, b.amount)))
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
        Line::from(format!("peers         {}", stats.peers)),
        Line::from(sold),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::protocol::{Bid, Lot};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(stats: &Stats) -> String {
        let mut terminal = Terminal::new(TestBackend::new(80, 20)).expect("test terminal");
        terminal
            .draw(|frame| draw(frame, stats, "demitter demo", Duration::from_secs(12)))
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

    #[test]
    fn the_dashboard_shows_the_lot_a_bid_and_the_rate() {
        let mut stats = Stats::new();
        stats.lot = Some(Lot {
            number: 3,
            item: "Brass telescope".into(),
            start: 100,
            step: 10,
        });
        stats.bids.push_front(Bid {
            lot: 3,
            bidder: "bidder-2".into(),
            amount: 180,
            sent_ns: 0,
        });
        stats.leader = Some(("bidder-2".into(), 180));
        let text = screen(&stats);
        assert!(text.contains("Lot 3: Brass telescope"), "{text}");
        assert!(text.contains("bidder-2        180"), "{text}");
        assert!(text.contains("Leader: bidder-2 at 180"), "{text}");
        assert!(text.contains("events/s"), "{text}");
        assert!(text.contains("ends by itself in 12 s"), "{text}");
    }
}
