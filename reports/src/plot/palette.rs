//! Series colours: the Okabe–Ito palette, distinguishable under the common forms of colour
//! blindness and on white. Yellow, the weakest on white, comes last.

use plotters::style::RGBColor;

const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(240, 228, 66),  // yellow
];

/// The colour of the `index`-th series (the palette repeats after eight).
pub fn series_colour(index: usize) -> RGBColor {
    OKABE_ITO[index % OKABE_ITO.len()]
}
