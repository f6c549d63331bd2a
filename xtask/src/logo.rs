//! The callcard logo, drawn from code.
//!
//! The mark is a rounded "card" in the brand teal with a white telephone
//! handset and two ringing waves; the wide formats add the wordmark
//! "callcard", set in geometric lowercase letters built from circles, arcs
//! and capsules. Every shape is a signed-distance function; each pixel is
//! sampled 3×3 times and each sample takes the analytic coverage of the
//! shape's edge, so the edges are smooth at every size.
//!
//! [`render`] is pure (size in, RGBA pixels out); [`write_logos`] renders the
//! five files Kommo wants in a widget archive and writes them as PNGs.

use anyhow::Context as _;
use std::path::Path;

/// One logo file of the widget archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogoSpec {
    pub file: &'static str,
    pub width: u32,
    pub height: u32,
}

/// The five images Kommo requires, at Kommo's exact sizes.
pub const LOGOS: [LogoSpec; 5] = [
    LogoSpec { file: "logo_main.png", width: 400, height: 272 },
    LogoSpec { file: "logo_medium.png", width: 240, height: 84 },
    LogoSpec { file: "logo_min.png", width: 84, height: 84 },
    LogoSpec { file: "logo_small.png", width: 108, height: 108 },
    LogoSpec { file: "logo.png", width: 130, height: 100 },
];

/// Kommo refuses archive images of 300 KB or more.
pub const MAX_IMAGE_BYTES: usize = 300 * 1024;

/// Renders the logo at `width`×`height` as straight (not premultiplied)
/// RGBA8, row by row. The layout follows the aspect ratio: wide images
/// (2:1 and wider) put the wordmark beside the handset, large images
/// (300 px wide and more) put it under the handset, the rest show the
/// handset alone.
pub fn render(width: u32, height: u32) -> Vec<u8> {
    let scene = Scene::new(width as f32, height as f32);
    let mut out = Vec::with_capacity(width as usize * height as usize * 4);
    const N: usize = 3;
    for y in 0..height {
        for x in 0..width {
            // Premultiplied accumulation over the sub-samples.
            let mut acc = [0.0f32; 4];
            for sy in 0..N {
                for sx in 0..N {
                    let p = V(x as f32 + (sx as f32 + 0.5) / N as f32, y as f32 + (sy as f32 + 0.5) / N as f32);
                    let c = scene.shade(p, 1.0 / N as f32);
                    for i in 0..4 {
                        acc[i] += c[i];
                    }
                }
            }
            let n = (N * N) as f32;
            let a = acc[3] / n;
            if a <= 0.0 {
                out.extend_from_slice(&[0, 0, 0, 0]);
            } else {
                for v in &acc[..3] {
                    out.push(to_u8(v / n / a));
                }
                out.push(to_u8(a));
            }
        }
    }
    out
}

/// Encodes straight RGBA8 pixels as a PNG file.
pub fn encode_png(width: u32, height: u32, rgba: &[u8]) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        rgba.len() == width as usize * height as usize * 4,
        "{} bytes of pixels for a {width}x{height} RGBA image",
        rgba.len()
    );
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        let mut writer = encoder.write_header().context("writing the PNG header")?;
        writer.write_image_data(rgba).context("writing the PNG pixels")?;
        writer.finish().context("finishing the PNG")?;
    }
    Ok(bytes)
}

/// Renders the five Kommo logos into `dir` (created if missing), refusing
/// to write one that would break Kommo's 300 KB limit.
pub fn write_logos(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for spec in LOGOS {
        let png = encode_png(spec.width, spec.height, &render(spec.width, spec.height))?;
        anyhow::ensure!(
            png.len() < MAX_IMAGE_BYTES,
            "{} is {} bytes, Kommo allows less than {MAX_IMAGE_BYTES}",
            spec.file,
            png.len()
        );
        let path = dir.join(spec.file);
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

// ---------------------------------------------------------------------------
// Geometry

#[derive(Clone, Copy, Debug, PartialEq)]
struct V(f32, f32);

impl V {
    fn sub(self, o: V) -> V {
        V(self.0 - o.0, self.1 - o.1)
    }
    fn add(self, o: V) -> V {
        V(self.0 + o.0, self.1 + o.1)
    }
    fn mul(self, k: f32) -> V {
        V(self.0 * k, self.1 * k)
    }
    fn dot(self, o: V) -> f32 {
        self.0 * o.0 + self.1 * o.1
    }
    fn len(self) -> f32 {
        self.dot(self).sqrt()
    }
    /// Rotates by `a` radians (y points down, so positive turns clockwise on screen).
    fn rot(self, a: f32) -> V {
        let (s, c) = a.sin_cos();
        V(self.0 * c - self.1 * s, self.0 * s + self.1 * c)
    }
    fn polar(angle_deg: f32) -> V {
        let a = angle_deg.to_radians();
        V(a.cos(), a.sin())
    }
}

fn circle(p: V, c: V, r: f32) -> f32 {
    p.sub(c).len() - r
}

/// A segment from `a` to `b` with round ends, `r` thick on each side.
fn capsule(p: V, a: V, b: V, r: f32) -> f32 {
    let pa = p.sub(a);
    let ba = b.sub(a);
    let h = (pa.dot(ba) / ba.dot(ba)).clamp(0.0, 1.0);
    pa.sub(ba.mul(h)).len() - r
}

/// A box of half-size `half` centred at `c`, turned by `angle` radians, with
/// corners rounded by `r`.
fn round_box(p: V, c: V, half: V, r: f32, angle: f32) -> f32 {
    let q = p.sub(c).rot(-angle);
    let d = V(q.0.abs() - half.0 + r, q.1.abs() - half.1 + r);
    let outside = V(d.0.max(0.0), d.1.max(0.0)).len();
    outside + d.0.max(d.1).min(0.0) - r
}

/// An arc of radius `radius` around `c`, from `from_deg` clockwise to
/// `to_deg` (screen degrees, 0 = right, 90 = down), stroked `r` thick on each
/// side, with round ends.
fn arc(p: V, c: V, radius: f32, from_deg: f32, to_deg: f32, r: f32) -> f32 {
    let mid = (from_deg + to_deg) / 2.0;
    let half = (to_deg - from_deg).abs() / 2.0;
    let q = p.sub(c);
    let rel = q.rot(-mid.to_radians());
    let ang = rel.1.atan2(rel.0).to_degrees().abs();
    if ang <= half {
        (q.len() - radius).abs() - r
    } else {
        let a = c.add(V::polar(from_deg).mul(radius));
        let b = c.add(V::polar(to_deg).mul(radius));
        (p.sub(a).len().min(p.sub(b).len())) - r
    }
}

/// Coverage of a shape at distance `d` for a sample `px` pixels wide.
fn coverage(d: f32, px: f32) -> f32 {
    (0.5 - d / px).clamp(0.0, 1.0)
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

fn rgb(hex: u32) -> [f32; 3] {
    [((hex >> 16) & 0xff) as f32 / 255.0, ((hex >> 8) & 0xff) as f32 / 255.0, (hex & 0xff) as f32 / 255.0]
}

// ---------------------------------------------------------------------------
// Brand

/// Gradient of the card, top left to bottom right.
const TEAL_LIGHT: u32 = 0x1fc7a0;
const TEAL_DARK: u32 = 0x0a7f86;
/// The shadow under the white shapes.
const SHADOW: u32 = 0x04454a;
const WHITE: u32 = 0xffffff;

/// The handset, in a unit frame centred on the handset: upright, earpiece at
/// the top, mouthpiece at the bottom, handle bowing to the left and both
/// pads facing right.
fn handset_unit(p: V) -> f32 {
    let centre = V(0.42, 0.0);
    let radius = 0.62;
    let handle = arc(p, centre, radius, 180.0 - 50.0, 180.0 + 50.0, 0.115);
    let mut d = handle;
    for sign in [-1.0f32, 1.0] {
        // The end of the handle, and the pad turned towards the arc centre.
        let end = centre.add(V::polar(180.0 + sign * 50.0).mul(radius));
        let inward = centre.sub(end).mul(1.0 / radius);
        let pad_centre = end.add(inward.mul(0.1));
        let angle = inward.1.atan2(inward.0);
        let pad = round_box(p, pad_centre, V(0.2, 0.155), 0.12, angle);
        d = d.min(pad);
    }
    d
}

/// The two ringing waves, in the same unit frame (before the tilt).
fn waves_unit(p: V, which: usize) -> f32 {
    let centre = V(0.16, 0.0);
    let radius = [0.43, 0.65][which];
    arc(p, centre, radius, -30.0, 30.0, 0.072)
}

/// The mark (handset and waves) placed at `c`, `size` pixels across.
struct Mark {
    c: V,
    size: f32,
}

impl Mark {
    /// The tilt that turns the upright handset to the classic pose:
    /// earpiece top left, mouthpiece bottom right, waves top right.
    const TILT: f32 = -std::f32::consts::FRAC_PI_4;
    /// Moves the handset and waves so that together they sit centred.
    const SHIFT: V = V(0.26, 0.0);

    fn local(&self, p: V) -> V {
        p.sub(self.c).rot(-Self::TILT).mul(1.0 / self.size)
    }
    fn handset(&self, p: V) -> f32 {
        handset_unit(self.local(p).add(Self::SHIFT)) * self.size
    }
    fn wave(&self, p: V, which: usize) -> f32 {
        waves_unit(self.local(p).add(Self::SHIFT), which) * self.size
    }
}

// ---------------------------------------------------------------------------
// The wordmark: "callcard" in geometric lowercase. Units: x-height = 1,
// baseline at y = 0, y pointing up; the stroke is `STROKE` wide.

const STROKE: f32 = 0.23;
const GAP: f32 = 0.17;
const ASCENDER: f32 = 1.42;

#[derive(Clone, Copy)]
enum Glyph {
    C,
    A,
    L,
    R,
    D,
}

impl Glyph {
    fn width(self) -> f32 {
        match self {
            Glyph::C => 0.92,
            Glyph::A | Glyph::D => 1.0,
            Glyph::L => STROKE,
            Glyph::R => 0.7,
        }
    }

    /// Distance in glyph units; `p` has y up, origin at the glyph's left
    /// end of the baseline.
    fn dist(self, p: V) -> f32 {
        let h = STROKE / 2.0;
        let bowl_c = V(0.5, 0.5);
        let bowl_r = 0.5 - h;
        match self {
            Glyph::C => {
                // Angles measured with y up here, so mirror to screen sense.
                let q = V(p.0, -p.1);
                arc(q, V(0.5, -0.5), bowl_r, 48.0, 312.0, h)
            }
            Glyph::A => {
                let bowl = circle(p, bowl_c, bowl_r).abs() - h;
                bowl.min(capsule(p, V(1.0 - h, h), V(1.0 - h, 1.0 - h), h))
            }
            Glyph::L => capsule(p, V(h, h), V(h, ASCENDER - h), h),
            Glyph::R => {
                let stem = capsule(p, V(h, h), V(h, 1.0 - h), h);
                let q = V(p.0, -p.1);
                // Shoulder: from the stem over the top to the right.
                let shoulder = arc(q, V(h + 0.42, -(1.0 - h - 0.42)), 0.42, 180.0, 300.0, h);
                stem.min(shoulder)
            }
            Glyph::D => {
                let bowl = circle(p, bowl_c, bowl_r).abs() - h;
                bowl.min(capsule(p, V(1.0 - h, h), V(1.0 - h, ASCENDER - h), h))
            }
        }
    }
}

const WORD: [Glyph; 8] = [Glyph::C, Glyph::A, Glyph::L, Glyph::L, Glyph::C, Glyph::A, Glyph::R, Glyph::D];

fn word_width() -> f32 {
    WORD.iter().map(|g| g.width()).sum::<f32>() + GAP * (WORD.len() - 1) as f32
}

/// The wordmark with its left baseline end at `origin`, x-height `xh` pixels.
struct Wordmark {
    origin: V,
    xh: f32,
}

impl Wordmark {
    fn dist(&self, p: V) -> f32 {
        let u = V((p.0 - self.origin.0) / self.xh, (self.origin.1 - p.1) / self.xh);
        if u.1 < -0.3 || u.1 > ASCENDER + 0.3 || u.0 < -0.3 || u.0 > word_width() + 0.3 {
            return 0.3 * self.xh;
        }
        let mut x = 0.0;
        let mut d = f32::MAX;
        for g in WORD {
            d = d.min(g.dist(V(u.0 - x, u.1)));
            x += g.width() + GAP;
        }
        d * self.xh
    }
}

// ---------------------------------------------------------------------------
// The scene

struct Scene {
    w: f32,
    h: f32,
    /// The card: inset and corner radius.
    inset: f32,
    corner: f32,
    mark: Mark,
    word: Option<Wordmark>,
    /// Shadow offset and softness, in pixels.
    shadow_off: f32,
    shadow_blur: f32,
}

impl Scene {
    fn new(w: f32, h: f32) -> Scene {
        let short = w.min(h);
        let inset = (short * 0.03).max(1.0);
        let corner = short * 0.2;
        if w / h >= 2.0 {
            // Wide: handset on the left, wordmark on the right.
            let mark_size = h * 0.5;
            let mark = Mark { c: V(h * 0.6, h * 0.5), size: mark_size };
            let left = h * 1.02;
            let right = w - h * 0.3;
            let xh = ((right - left) / word_width()).min(h * 0.32);
            let text_h = xh * ASCENDER;
            let origin = V(left, h * 0.5 + text_h * 0.5);
            Scene {
                w,
                h,
                inset,
                corner: h * 0.22,
                mark,
                word: Some(Wordmark { origin, xh }),
                shadow_off: h * 0.025,
                shadow_blur: h * 0.04,
            }
        } else if w >= 300.0 {
            // Large: handset above, wordmark below.
            let mark_size = h * 0.4;
            let mark = Mark { c: V(w * 0.5, h * 0.37), size: mark_size };
            let xh = (w * 0.62 / word_width()).min(h * 0.14);
            let origin = V(w * 0.5 - word_width() * xh * 0.5, h * 0.84);
            Scene {
                w,
                h,
                inset,
                corner,
                mark,
                word: Some(Wordmark { origin, xh }),
                shadow_off: h * 0.012,
                shadow_blur: h * 0.02,
            }
        } else {
            let mark = Mark { c: V(w * 0.5, h * 0.5), size: short * 0.56 };
            Scene { w, h, inset, corner, mark, word: None, shadow_off: short * 0.02, shadow_blur: short * 0.035 }
        }
    }

    /// The white shapes: handset, waves and wordmark.
    fn foreground(&self, p: V) -> f32 {
        let mut d = self.mark.handset(p).min(self.mark.wave(p, 0)).min(self.mark.wave(p, 1));
        if let Some(word) = &self.word {
            d = d.min(word.dist(p));
        }
        d
    }

    /// Premultiplied RGBA of one sample `p`; `px` is the sample width.
    fn shade(&self, p: V, px: f32) -> [f32; 4] {
        let half = V(self.w / 2.0 - self.inset, self.h / 2.0 - self.inset);
        let card_d = round_box(p, V(self.w / 2.0, self.h / 2.0), half, self.corner, 0.0);
        let card_a = coverage(card_d, px);
        if card_a <= 0.0 {
            return [0.0; 4];
        }
        // Diagonal gradient with a soft light from the top left.
        let t = ((p.0 / self.w) * 0.45 + (p.1 / self.h) * 0.55).clamp(0.0, 1.0);
        let mut colour = mix(rgb(TEAL_LIGHT), rgb(TEAL_DARK), t);
        let glow = 1.0 - smoothstep(0.0, 0.9, p.sub(V(self.w * 0.2, 0.0)).len() / self.w.max(self.h));
        colour = mix(colour, rgb(WHITE), glow * 0.12);
        // A thin darker rim just inside the card edge.
        let rim = 1.0 - smoothstep(0.0, self.inset * 1.2 + 1.0, -card_d);
        colour = mix(colour, rgb(TEAL_DARK), rim * 0.35);
        // Soft shadow of the white shapes, then the shapes.
        let s = self.foreground(p.sub(V(self.shadow_off * 0.5, self.shadow_off)));
        let shadow = (1.0 - smoothstep(-self.shadow_blur, self.shadow_blur, s)) * 0.28;
        colour = mix(colour, rgb(SHADOW), shadow);
        let fg = coverage(self.foreground(p), px);
        colour = mix(colour, rgb(WHITE), fg);
        [colour[0] * card_a, colour[1] * card_a, colour[2] * card_a, card_a]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(rgba: &[u8], w: u32, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * w + x) * 4) as usize;
        [rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]]
    }

    #[test]
    fn every_logo_has_its_size_and_is_a_drawing() {
        for spec in LOGOS {
            let rgba = render(spec.width, spec.height);
            assert_eq!(rgba.len(), (spec.width * spec.height * 4) as usize, "{}", spec.file);
            // Rounded corners are transparent, the middle of the card is opaque.
            assert_eq!(pixel(&rgba, spec.width, 0, 0)[3], 0, "{} corner", spec.file);
            let opaque = rgba.chunks(4).filter(|p| p[3] == 255).count();
            assert!(opaque > (spec.width * spec.height) as usize / 2, "{} card", spec.file);
            // White shapes on teal: both must be present in quantity.
            let white = rgba.chunks(4).filter(|p| p[0] > 240 && p[1] > 240 && p[2] > 240 && p[3] == 255).count();
            let teal = rgba.chunks(4).filter(|p| p[3] == 255 && p[1] as u32 > p[0] as u32 + 60).count();
            let area = (spec.width * spec.height) as usize;
            assert!(white > area / 25, "{}: {white} white pixels", spec.file);
            assert!(teal > area / 3, "{}: {teal} teal pixels", spec.file);
            // Anti-aliased: there are in-between shades.
            let grey = rgba.chunks(4).filter(|p| p[3] == 255 && p[0] > 80 && p[0] < 220).count();
            assert!(grey > 20, "{}: no anti-aliasing", spec.file);
            let png = encode_png(spec.width, spec.height, &rgba).unwrap();
            assert!(png.len() < MAX_IMAGE_BYTES, "{}", spec.file);
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(render(84, 84), render(84, 84));
    }

    #[test]
    fn encode_png_refuses_a_wrong_buffer() {
        assert!(encode_png(2, 2, &[0; 15]).is_err());
    }
}
