//! The logos in `images/` are what `xtask::logo` draws: regenerate them with
//! `cargo xtask logos` after changing the drawing.

use std::path::Path;
use xtask::logo::{render, LOGOS, MAX_IMAGE_BYTES};

#[test]
fn the_committed_logos_are_the_drawn_ones() {
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("images");
    for spec in LOGOS {
        let path = images.join(spec.file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(bytes.len() < MAX_IMAGE_BYTES, "{} is too big for Kommo", spec.file);

        let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((frame.width, frame.height), (spec.width, spec.height), "{}", spec.file);
        assert_eq!(frame.color_type, png::ColorType::Rgba, "{}", spec.file);
        let drawn = render(spec.width, spec.height);
        // Allow a step or two of rounding, in case floating point differs by platform.
        let off = pixels[..frame.buffer_size()].iter().zip(&drawn).filter(|(a, b)| a.abs_diff(**b) > 2).count();
        assert_eq!(off, 0, "{} differs from the drawing in {off} bytes; run `cargo xtask logos`", spec.file);
    }
}
