//! The bundled font, registered with plotters once per process.
//!
//! plotters' `ab_glyph` text backend measures text with a font it has been given rather than
//! with the system's fonts, so charts lay out the same on a bare server or in CI. The font is
//! DejaVu Sans (from Debian's `fonts-dejavu-core`); its licence is in
//! `reports/assets/fonts/LICENSE-DejaVu.txt`.

use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};

/// The family name charts ask for; the bundled font is registered under it.
pub const FAMILY: &str = "sans-serif";

const FILE_NAME: &str = "DejaVuSans.ttf";
const DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font under [`FAMILY`]; later calls are free and return the first
/// call's outcome.
pub fn ensure_registered() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidFont { name: FILE_NAME })
    }
}
