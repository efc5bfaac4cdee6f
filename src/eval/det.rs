//! The detection-error trade-off plot: misses against false alarms per hour, one curve per
//! condition, the shipped operating point marked.

use super::stream::BenchmarkReport;
use crate::network::Mode;
use anyhow::Result;
use std::path::Path;

pub fn plot_det(report: &BenchmarkReport, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    use plotters::style::{register_font, FontStyle};
    let _ = register_font("sans-serif", FontStyle::Normal, include_bytes!("../../assets/fonts/DejaVuSans.ttf"));
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    // Log scale: false alarms span orders of magnitude. Zero is drawn at the floor.
    let floor = 0.1f64;
    let max_fa = report.results.iter().flat_map(|r| r.det.iter().map(|d| d.false_alarms_per_hour)).fold(10.0f64, f64::max) * 1.2;
    let hours = report.results.first().map_or(0.0, |r| r.negative_hours);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Detection-error trade-off ({:?} part, one global threshold swept)", report.part), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((floor..max_fa).log_scale(), 0f64..100f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(format!("false alarms per hour, log scale ({hours:.2} h of non-keyword audio; 0 drawn at {floor})"))
        .y_desc("keywords missed (%)")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| err(&e))?;
    let colours = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40), RGBColor(148, 103, 189)];
    for r in &report.results {
        let twin = r.mode == Mode::Dense;
        let mut curves: Vec<(String, Vec<f64>, (f64, f64))> =
            vec![("clean".to_string(), r.det.iter().map(|d| d.recall_clean).collect(), (r.false_alarms_per_hour, r.clean.recall))];
        for (k, (snr, rec)) in r.noisy.iter().enumerate() {
            curves.push((format!("{snr} dB SNR"), r.det.iter().map(|d| d.recall_noisy[k]).collect(), (r.false_alarms_per_hour, rec.recall)));
        }
        for (k, (name, recall, shipped)) in curves.into_iter().enumerate() {
            let c = colours[k % colours.len()];
            let style = if twin { c.mix(0.5).stroke_width(1) } else { c.stroke_width(2) };
            let pts: Vec<(f64, f64)> = r.det.iter().zip(&recall).map(|(d, rc)| (d.false_alarms_per_hour.clamp(floor, max_fa), 100.0 * (1.0 - rc))).collect();
            let label = if twin { format!("{name}, non-spiking twin") } else { format!("{name}, spiking") };
            chart
                .draw_series(LineSeries::new(pts, style))
                .map_err(|e| err(&e))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            if !twin {
                chart
                    .draw_series(std::iter::once(Circle::new((shipped.0.clamp(floor, max_fa), 100.0 * (1.0 - shipped.1)), 6, c.filled())))
                    .map_err(|e| err(&e))?;
            }
        }
    }
    chart.configure_series_labels().label_font(("sans-serif", 14)).background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
