//! The time plots: probability traces with thresholds, spike counts, and the two heat maps
//! (mel spectrogram, spike raster) drawn as textures updated every frame.

use super::state::{Dashboard, LayerHistory, Ring, RingMatrix, HISTORY_FRAMES, HISTORY_SECONDS};
use eframe::egui::{self, Color32, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{HLine, Legend, Line, LineStyle, Plot, PlotPoints};

/// Distinct colours for keywords and layers (Tableau 10).
pub const PALETTE: [Color32; 10] = [
    Color32::from_rgb(78, 121, 167),
    Color32::from_rgb(242, 142, 43),
    Color32::from_rgb(225, 87, 89),
    Color32::from_rgb(118, 183, 178),
    Color32::from_rgb(89, 161, 79),
    Color32::from_rgb(237, 201, 72),
    Color32::from_rgb(176, 122, 161),
    Color32::from_rgb(255, 157, 167),
    Color32::from_rgb(156, 117, 95),
    Color32::from_rgb(186, 176, 172),
];

pub fn color_for(i: usize) -> Color32 {
    PALETTE[i % PALETTE.len()]
}

/// A perceptual dark-to-bright map (close to "inferno"), t in [0, 1].
pub fn inferno(t: f32) -> Color32 {
    const STOPS: [(f32, [u8; 3]); 6] =
        [(0.0, [8, 6, 24]), (0.2, [50, 10, 94]), (0.4, [120, 28, 109]), (0.6, [188, 55, 84]), (0.8, [237, 121, 32]), (1.0, [252, 236, 150])];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let k = STOPS.iter().position(|s| s.0 >= t).unwrap_or(STOPS.len() - 1).max(1);
    let (t0, c0) = STOPS[k - 1];
    let (t1, c1) = STOPS[k];
    let f = (t - t0) / (t1 - t0);
    let mix = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * f).round() as u8;
    Color32::from_rgb(mix(c0[0], c1[0]), mix(c0[1], c1[1]), mix(c0[2], c1[2]))
}

/// Time axis values for the last `n` frames: seconds relative to the newest frame.
fn rel_times(state: &Dashboard) -> Vec<f64> {
    let last = state.times.last().copied().unwrap_or(0.0);
    state.times.iter().map(|t| t - last).collect()
}

/// Per-keyword smoothed probabilities over the last seconds, with each threshold as a
/// dashed line in the keyword's colour.
pub fn probabilities(ui: &mut egui::Ui, state: &Dashboard, height: f32) {
    let xs = rel_times(state);
    // The legend is drawn above the plot (inside, it would hide the traces).
    Plot::new("probs")
        .height(height)
        .include_x(-HISTORY_SECONDS)
        .include_x(0.0)
        .include_y(0.0)
        .include_y(1.0)
        .default_x_bounds(-HISTORY_SECONDS, 0.0)
        .default_y_bounds(0.0, 1.02)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .x_axis_label("seconds")
        .y_axis_label("probability")
        .show(ui, |p| {
            let mut drawn: Vec<(usize, f32)> = Vec::new();
            for (k, (i, label)) in state.keywords().enumerate() {
                if state.probs.cols() <= i {
                    break;
                }
                let pts: PlotPoints = xs.iter().zip(state.probs.column(i)).map(|(&x, y)| [x, y as f64]).collect();
                p.line(Line::new(label.to_string(), pts).color(color_for(k)).width(1.8));
                drawn.push((k, state.threshold_of(i)));
            }
            // One grey line for the shared threshold; coloured ones for per-keyword overrides.
            let global = state.global_threshold;
            p.hline(HLine::new("threshold", global as f64).color(Color32::from_gray(170)).style(LineStyle::dashed_loose()));
            for (k, t) in drawn {
                if (t - global).abs() > 1e-4 && t.is_finite() {
                    p.hline(HLine::new(format!("threshold {k}"), t as f64).color(color_for(k)).style(LineStyle::dashed_dense()));
                }
            }
        });
}

/// Spikes per frame per layer over the last seconds.
pub fn spike_trace(ui: &mut egui::Ui, state: &Dashboard, height: f32) {
    layer_trace(ui, state, height, "spikes", "spikes / frame", "layer", 4, |h| &h.spikes);
}

/// Memory read-out events (delta-coded memory states that changed level) per frame per
/// layer over the last seconds: the memory's share of the event-driven work.
pub fn memory_event_trace(ui: &mut egui::Ui, state: &Dashboard, height: f32) {
    layer_trace(ui, state, height, "memory_events", "memory events / frame", "memory", 6, |h| &h.memory_events);
}

/// One line per layer of a per-frame count over the last seconds.
#[allow(clippy::too_many_arguments)]
fn layer_trace<T: Copy + Into<f64>>(
    ui: &mut egui::Ui,
    state: &Dashboard,
    height: f32,
    id: &str,
    y_label: &str,
    line_name: &str,
    first_color: usize,
    series: impl Fn(&LayerHistory) -> &Ring<T>,
) {
    let xs = rel_times(state);
    Plot::new(id)
        .height(height)
        .legend(Legend::default().position(egui_plot::Corner::LeftTop))
        .include_x(-HISTORY_SECONDS)
        .include_x(0.0)
        .include_y(0.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .x_axis_label("seconds")
        .y_axis_label(y_label)
        .show(ui, |p| {
            for (l, h) in state.layers.iter().enumerate() {
                let pts: PlotPoints = xs.iter().zip(series(h).iter()).map(|(&x, &y)| [x, y.into()]).collect();
                p.line(Line::new(format!("{line_name} {l}"), pts).color(color_for(l + first_color)).width(1.5));
            }
        });
}

/// Builds a heat map image: time runs left to right over the full history width (older
/// frames not yet seen stay dark), rows are the matrix's columns, first column at the bottom.
pub fn heat_image(m: &RingMatrix, color: impl Fn(f32) -> Color32) -> ColorImage {
    let (w, h) = (HISTORY_FRAMES, m.cols().max(1));
    let bg = color(f32::NAN);
    let mut px = vec![bg; w * h];
    let x0 = w - m.len().min(w);
    for (x, row) in m.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            px[(h - 1 - c) * w + x0 + x] = color(v);
        }
    }
    ColorImage::new([w, h], px)
}

/// Uploads (or replaces) a texture.
pub fn update_texture(ctx: &egui::Context, slot: &mut Option<TextureHandle>, name: &str, img: ColorImage) {
    match slot {
        Some(t) => t.set(img, TextureOptions::NEAREST),
        None => *slot = Some(ctx.load_texture(name, img, TextureOptions::NEAREST)),
    }
}

/// Colour scale for log-mel values: the top 12 nepers below the window's loudest band map
/// to dark..bright, so quiet rooms don't look loud and speech stands out.
pub fn spectrogram_image(m: &RingMatrix) -> ColorImage {
    // One pass: the peak (any value), and the lowest finite value.
    let (min, max) = m.iter().flat_map(|r| r.iter().copied()).fold((f32::MAX, f32::MIN), |(a, b), v| (if v.is_finite() { a.min(v) } else { a }, b.max(v)));
    let hi = if max.is_finite() { max.max(-2.0) } else { 0.0 };
    // At most 12 (natural-log units) below the peak, as for log-mel, but no lower than the
    // window's minimum: PCEN frames span only a few units, and silence must stay dark.
    let lo = (hi - 12.0).max(min.min(hi - 0.5));
    heat_image(m, |v| if v.is_nan() { Color32::from_rgb(8, 6, 24) } else { inferno((v - lo) / (hi - lo)) })
}

/// Spike raster of one layer: one row per neuron; 0 dark, 1 spike coloured, more brighter.
pub fn raster_image(m: &RingMatrix, spiking: bool, tint: Color32) -> ColorImage {
    // Dense mode carries rates, not counts: scale by the window's peak instead.
    let peak = if spiking { 3.0 } else { m.iter().flat_map(|r| r.iter().copied()).fold(1e-6, f32::max) };
    let bg = Color32::from_rgb(14, 16, 22);
    heat_image(m, |v| {
        if v.is_nan() || v <= 0.0 {
            return bg;
        }
        let t = (v / peak).clamp(0.0, 1.0);
        let f = 0.55 + 0.45 * t;
        let lift = |c: u8| ((c as f32 * f) + 255.0 * (t * 0.35)).min(255.0) as u8;
        Color32::from_rgb(lift(tint.r()), lift(tint.g()), lift(tint.b()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_image_puts_newest_frame_at_the_right_and_first_band_at_the_bottom() {
        let mut m = RingMatrix::new(2, HISTORY_FRAMES);
        m.push(&[1.0, 0.0]);
        let img = heat_image(&m, |v| if v == 1.0 { Color32::WHITE } else { Color32::BLACK });
        assert_eq!(img.size, [HISTORY_FRAMES, 2]);
        // Bottom row (band 0), rightmost column.
        assert_eq!(img.pixels[HISTORY_FRAMES + HISTORY_FRAMES - 1], Color32::WHITE);
        assert_eq!(img.pixels[HISTORY_FRAMES - 1], Color32::BLACK);
    }

    #[test]
    fn spectrogram_quietest_band_is_dark_for_pcen_and_log_mel_ranges() {
        let dark = inferno(0.0);
        // PCEN-like: values 0..2; log-mel-like: a -27 floor far below the 12-unit window.
        for (quiet, loud) in [(0.0f32, 2.0f32), (-27.0, 1.0)] {
            let mut m = RingMatrix::new(2, HISTORY_FRAMES);
            m.push(&[quiet, loud]);
            let img = spectrogram_image(&m);
            let lum = |c: Color32| c.r() as u32 + c.g() as u32 + c.b() as u32;
            let q = img.pixels[HISTORY_FRAMES + HISTORY_FRAMES - 1];
            assert_eq!(lum(q), lum(dark), "quiet band {quiet} drawn as {q:?}");
            assert!(lum(img.pixels[HISTORY_FRAMES - 1]) > lum(dark) + 200);
        }
    }

    #[test]
    fn inferno_is_monotone_in_brightness() {
        let lum = |c: Color32| c.r() as u32 + c.g() as u32 + c.b() as u32;
        let mut prev = 0;
        for i in 0..=20 {
            let l = lum(inferno(i as f32 / 20.0));
            assert!(l >= prev, "{i}");
            prev = l;
        }
        assert_eq!(inferno(f32::NAN), inferno(0.0));
    }
}
