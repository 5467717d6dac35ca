//! bench/peers.svg: the client p99 of each configuration, one error bar per
//! (configuration, client, concurrency): the median of the rounds, with the
//! fastest and slowest round as the bar's ends.

use plotters::prelude::*;

pub struct Bar {
    /// `configuration, client, concurrency`.
    pub label: String,
    /// The configuration's index, for its color.
    pub series: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

pub fn draw(path: &std::path::Path, title: &str, bars: &[Bar]) -> Result<(), String> {
    let top = bars.iter().map(|b| b.max).fold(0.0_f64, f64::max).max(0.1) * 1.15;
    let width = 120 + 46 * u32::try_from(bars.len()).unwrap_or(40);
    let root = SVGBackend::new(path, (width.max(900), 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = i32::try_from(bars.len()).unwrap_or(i32::MAX);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(170)
        .y_label_area_size(60)
        .build_cartesian_2d(-1..n, 0.0..top)
        .map_err(|e| e.to_string())?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    chart
        .configure_mesh()
        .y_desc("client p99 (ms), median and range of the rounds")
        .x_labels(bars.len() + 2)
        .x_label_style(
            ("sans-serif", 11)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .x_label_formatter(&|x| {
            usize::try_from(*x)
                .ok()
                .and_then(|i| labels.get(i))
                .cloned()
                .unwrap_or_default()
        })
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, b) in bars.iter().enumerate() {
        let x = i32::try_from(i).unwrap_or(i32::MAX);
        let color = Palette99::pick(b.series).stroke_width(3);
        chart
            .draw_series(std::iter::once(ErrorBar::new_vertical(
                x, b.min, b.median, b.max, color, 12,
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(Circle::new(
                (x, b.median),
                4,
                Palette99::pick(b.series).filled(),
            )))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
