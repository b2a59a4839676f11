//! One way to draw a line chart, shared by every plot: size, margins, fonts, gridlines,
//! palette and legend are decided here so all charts of a report look alike.

use std::path::Path;

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::font::{self, FAMILY};
use super::palette::series_colour;
use crate::error::{Error, Result};

/// Size of every chart, in pixels.
pub const SIZE: (u32, u32) = (1000, 600);

/// One named line.
pub struct Line {
    /// Legend text.
    pub name: String,
    /// Points in data coordinates, in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// What a chart shows, independent of its axes' kind.
pub struct LineChart<'a> {
    /// Title above the chart.
    pub title: &'a str,
    /// Title of the x axis, with its unit.
    pub x_title: &'a str,
    /// Title of the y axis, with its unit.
    pub y_title: &'a str,
    /// The lines, one colour each.
    pub lines: Vec<Line>,
    /// Where the legend goes (where the lines usually are not).
    pub legend_at: SeriesLabelPosition,
}

/// Draws `chart` on axes `x` and `y` into an SVG file at `path`. A line without points is
/// marked "(no data)" in the legend; when no line has a point the axes carry a note instead.
pub fn draw<X, Y>(path: &Path, chart: &LineChart<'_>, x: X, y: Y) -> Result<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    font::ensure_registered()?;
    let mut svg = String::new();
    draw_svg(&mut svg, chart, x, y).map_err(|err| Error::Plot {
        path: path.to_path_buf(),
        message: err.to_string(),
    })?;
    std::fs::write(path, svg).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Renders into `svg` rather than a file, so file errors are ours to report with the path.
fn draw_svg<X, Y>(
    svg: &mut String,
    chart: &LineChart<'_>,
    x: X,
    y: Y,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.margin(10, 30, 10, 30);

    let mut context = ChartBuilder::on(&root)
        .caption(chart.title, (FAMILY, 26))
        .margin(10)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(x, y)?;

    context
        .configure_mesh()
        .x_desc(chart.x_title)
        .y_desc(chart.y_title)
        .axis_desc_style((FAMILY, 18))
        .label_style((FAMILY, 14))
        .x_label_formatter(&super::axis::tick_label)
        .y_label_formatter(&super::axis::tick_label)
        .bold_line_style(RGBColor(200, 200, 200))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()?;

    for (index, line) in chart.lines.iter().enumerate() {
        let colour = series_colour(index);
        let style = colour.stroke_width(2);
        context
            .draw_series(LineSeries::new(line.points.iter().copied(), style))?
            .label(if line.points.is_empty() {
                format!("{} (no data)", line.name)
            } else {
                line.name.clone()
            })
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
    }
    if !chart.lines.is_empty() {
        context
            .configure_series_labels()
            .position(chart.legend_at.clone())
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .margin(12)
            .draw()?;
    }

    if chart.lines.iter().all(|line| line.points.is_empty()) {
        let (width, height) = root.dim_in_pixel();
        let centred = Pos::new(HPos::Center, VPos::Center);
        let style = TextStyle::from((FAMILY, 22).into_font())
            .color(&RGBColor(110, 110, 110))
            .pos(centred);
        root.draw_text("no data recorded", &style, (width as i32 / 2, height as i32 / 2))?;
    }
    root.present()
}
