//! Where the latency goes: one horizontal bar per engine configuration, stacked from the mean
//! of each latency component (trigger wait, queueing, watermark wait, buffer wait, ...).
//!
//! The components of a run add up to its mean latency, so a bar's length is the mean and its
//! segments say which mechanism of the model costs what. A component keeps its colour across
//! bars, so the same mechanism is comparable between configurations.

use std::collections::BTreeSet;
use std::path::Path;

use plotters::chart::SeriesLabelPosition;
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis;
use super::font::FAMILY;
use super::palette::series_colour;
use super::render::{centred_note, write_svg_and_png, DrawResult, Figure, FigureFiles};
use crate::error::Result;

/// One bar: a configuration and the mean of each of its latency components, in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct DecompositionBar {
    /// The configuration's name, shown on the y axis.
    pub name: String,
    /// (component, mean ms), in stacking order.
    pub components: Vec<(String, f64)>,
}

/// Draws the stacked latency decomposition of each bar as `path` (SVG) and the same stem
/// `.png`: x = mean latency (ms), one bar per configuration, one colour per component.
pub fn latency_decomposition(path: &Path, title: &str, bars: &[DecompositionBar]) -> Result<FigureFiles> {
    let figure = DecompositionFigure {
        title: title.to_string(),
        bars: bars.to_vec(),
    };
    write_svg_and_png(path, &figure)
}

struct DecompositionFigure {
    title: String,
    bars: Vec<DecompositionBar>,
}

/// Longest bar label, in characters; longer names are cut with an ellipsis.
const MAX_LABEL_CHARS: usize = 36;

/// `name` cut to `max` characters, the cut marked with "…".
fn shorten(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_string()
    } else {
        name.chars().take(max - 1).chain(['…']).collect()
    }
}

/// Component names in a stable order: first appearance across the bars.
fn component_order(bars: &[DecompositionBar]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for bar in bars {
        for (name, _) in &bar.components {
            if seen.insert(name.clone()) {
                order.push(name.clone());
            }
        }
    }
    order
}

impl Figure for DecompositionFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let root = root.margin(10, 30, 10, 10);
        // Row 0 is at the bottom: reverse so the first configuration reads first, at the top.
        let bars: Vec<DecompositionBar> = self.bars.iter().rev().cloned().collect();
        let totals = bars
            .iter()
            .map(|b| b.components.iter().map(|c| c.1.max(0.0)).sum::<f64>());
        let x = axis::zero_based_range(totals);
        let x = x.start..x.end * 1.5; // room on the right for the totals and the legend
        let n = bars.len().max(1);
        let names: Vec<String> = bars.iter().map(|b| shorten(&b.name, MAX_LABEL_CHARS)).collect();
        let label_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(4).max(6) as u32 * 8 + 45;
        let mut context = ChartBuilder::on(&root)
            .caption(&self.title, (FAMILY, 26))
            .margin(10)
            .x_label_area_size(55)
            .y_label_area_size(label_width)
            .build_cartesian_2d(x.clone(), (0..n).into_segmented())?;
        let label_of = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => names.get(*i).cloned().unwrap_or_default(),
            SegmentValue::Last => String::new(),
        };
        context
            .configure_mesh()
            .x_desc("mean latency (ms), by component")
            .y_desc("engine configuration")
            .axis_desc_style((FAMILY, 18))
            .label_style((FAMILY, 14))
            .x_label_formatter(&axis::tick_label)
            .y_label_formatter(&label_of)
            .y_labels(n)
            .disable_y_mesh()
            .bold_line_style(RGBColor(200, 200, 200))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;

        let order = component_order(&self.bars);
        for (colour_index, component) in order.iter().enumerate() {
            let colour = series_colour(colour_index);
            let mut rects = Vec::new();
            for (row, bar) in bars.iter().enumerate() {
                let before: f64 = bar
                    .components
                    .iter()
                    .take_while(|(name, _)| name != component)
                    .map(|c| c.1.max(0.0))
                    .sum();
                if let Some(&(_, value)) = bar.components.iter().find(|(name, _)| name == component) {
                    let mut rect = Rectangle::new(
                        [
                            (before, SegmentValue::Exact(row)),
                            (before + value.max(0.0), SegmentValue::Exact(row + 1)),
                        ],
                        colour.filled(),
                    );
                    rect.set_margin(8, 8, 0, 0);
                    rects.push(rect);
                }
            }
            context
                .draw_series(rects)?
                .label(component.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], colour.filled()));
        }
        // The total at the end of each bar.
        for (row, bar) in bars.iter().enumerate() {
            let total: f64 = bar.components.iter().map(|c| c.1.max(0.0)).sum();
            let text = format!(" {} ms", axis::tick_label(&((total * 10.0).round() / 10.0)));
            context.draw_series([Text::new(
                text,
                (total, SegmentValue::CenterOf(row)),
                TextStyle::from((FAMILY, 14).into_font()).pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                )),
            )])?;
        }
        if !order.is_empty() {
            context
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font((FAMILY, 15))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .margin(12)
                .draw()?;
        } else {
            centred_note(&root, "no latency components recorded")?;
        }
        Ok(())
    }
}
