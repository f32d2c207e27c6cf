//! `--chart FILE.svg`: delivered events per second, emitter beside baseline, per scenario.

use std::path::Path;

use plotters::prelude::*;

use crate::BenchError;
use crate::scenario::{Layer, Outcome};

/// Draws a grouped bar chart of `outcomes` into an SVG file.
pub fn draw(outcomes: &[Outcome], path: &Path) -> Result<(), BenchError> {
    let chart_error = |e: &dyn std::fmt::Display| BenchError::Chart(e.to_string());
    let groups: Vec<String> = {
        let mut g: Vec<String> = Vec::new();
        for o in outcomes {
            let label = format!("{} {}", o.transport, o.scenario);
            if !g.contains(&label) {
                g.push(label);
            }
        }
        g
    };
    let max = outcomes
        .iter()
        .map(|o| o.delivered_per_sec)
        .fold(1.0, f64::max)
        * 1.15;
    let width = (160 * groups.len().max(1) + 160) as u32;
    let root = SVGBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| chart_error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("delivered events per second", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..groups.len() as f64, 0f64..max)
        .map_err(|e| chart_error(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len())
        .x_label_formatter(&|x| groups.get(x.floor() as usize).cloned().unwrap_or_default())
        .y_label_formatter(&|y| format!("{:.1}M", y / 1e6))
        .draw()
        .map_err(|e| chart_error(&e))?;
    for (layer, color, offset) in [
        (Layer::Emitter, BLUE, 0.15),
        (Layer::Baseline, RGBColor(150, 150, 150), 0.5),
        (Layer::Peer, RGBColor(230, 140, 30), 0.15),
    ] {
        let bars = outcomes
            .iter()
            .filter(|o| o.layer == layer)
            .filter_map(|o| {
                let label = format!("{} {}", o.transport, o.scenario);
                let i = groups.iter().position(|g| *g == label)? as f64;
                Some(Rectangle::new(
                    [(i + offset, 0.0), (i + offset + 0.35, o.delivered_per_sec)],
                    color.filled(),
                ))
            });
        chart
            .draw_series(bars)
            .map_err(|e| chart_error(&e))?
            .label(layer.to_string())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| chart_error(&e))?;
    root.present().map_err(|e| chart_error(&e))?;
    Ok(())
}
