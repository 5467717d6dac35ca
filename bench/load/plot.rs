//! The latency percentile chart (SVG): x is the percentile on the
//! HdrHistogram scale (each step one more nine), y the latency in ms.

use plotters::prelude::*;

use super::client::Outcome;

pub struct Series<'a> {
    pub name: String,
    pub outcome: &'a Outcome,
}

/// 0 -> p0, 1 -> p90, 2 -> p99, 3 -> p99.9.
fn quantile(x: f64) -> f64 {
    1.0 - 10f64.powf(-x)
}

pub fn draw(path: &std::path::Path, title: &str, series: &[Series<'_>]) -> Result<(), String> {
    let top = series
        .iter()
        .map(|s| s.outcome.ms(0.999))
        .fold(0.0_f64, f64::max)
        .max(0.1)
        * 1.15;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..3.0_f64, 0.0..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(4)
        .x_label_formatter(&|x| {
            let q = quantile(*x) * 100.0;
            format!("p{}", (q * 100.0).round() / 100.0)
        })
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).stroke_width(2);
        let points: Vec<(f64, f64)> = (0..=300)
            .map(|k| {
                let x = f64::from(k) / 100.0;
                (x, s.outcome.ms(quantile(x)))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points, color))
            .map_err(|e| e.to_string())?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 20, y)],
                    Palette99::pick(i).stroke_width(2),
                )
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
