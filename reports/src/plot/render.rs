//! Every figure is drawn twice from one description: as SVG (inlined in the HTML report, sharp
//! at any zoom) and as PNG (for Markdown viewers, slides and chat), so the two never disagree.
//!
//! A figure implements [`Figure`]: one drawing routine generic over the plotters backend.
//! [`write_svg_and_png`] renders it to `<stem>.svg` and `<stem>.png`. Text in both goes
//! through the bundled DejaVu Sans (registered by `font::ensure_registered`), so the PNG
//! has the same glyphs on a machine without any system font.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::font::{self, FAMILY};
use crate::error::{Error, Result};

/// Size of every chart, in pixels.
pub const SIZE: (u32, u32) = (1000, 600);

/// The error a drawing routine returns on backend `DB`.
pub type DrawResult<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Something that can draw itself on any plotters backend.
pub trait Figure {
    /// Draws the whole figure on `root` (already filled white, [`SIZE`] pixels).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// The two files a figure was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureFiles {
    /// The SVG file.
    pub svg: PathBuf,
    /// The PNG file, same stem.
    pub png: PathBuf,
}

/// Writes `figure` to `svg_path` (SVG) and to the same path with extension `png` (PNG).
pub fn write_svg_and_png(svg_path: &Path, figure: &impl Figure) -> Result<FigureFiles> {
    font::ensure_registered()?;
    let plot_error = |path: &Path| {
        let path = path.to_path_buf();
        move |message: String| Error::Plot { path, message }
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw_on(&root, figure).map_err(|e| plot_error(svg_path)(e.to_string()))?;
    }
    std::fs::write(svg_path, svg).map_err(|source| Error::Io {
        path: svg_path.to_path_buf(),
        source,
    })?;

    let png_path = svg_path.with_extension("png");
    let root = BitMapBackend::new(&png_path, SIZE).into_drawing_area();
    draw_on(&root, figure).map_err(|e| plot_error(&png_path)(e.to_string()))?;
    drop(root);
    Ok(FigureFiles {
        svg: svg_path.to_path_buf(),
        png: png_path,
    })
}

fn draw_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &impl Figure) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    figure.draw(root)?;
    root.present()
}

/// Writes `text` in grey, centred on `area`: the note a chart shows instead of absent data.
pub fn centred_note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str) -> DrawResult<DB> {
    let (width, height) = area.dim_in_pixel();
    let style = TextStyle::from((FAMILY, 22).into_font())
        .color(&RGBColor(110, 110, 110))
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(text, &style, (width as i32 / 2, height as i32 / 2))
}
