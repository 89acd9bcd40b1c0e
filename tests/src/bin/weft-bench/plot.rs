//! SVG plots of the scaling curves (log-log: a flat line means cost does
//! not grow with n, a 45° line means it grows linearly).

use std::path::Path;

use plotters::prelude::*;

use crate::Case;

/// One line: its legend and `(n, value)` points.
type Line = (&'static str, Vec<(f64, f64)>);

fn chart(path: &Path, title: &str, y_desc: &str, lines: &[Line]) -> anyhow::Result<()> {
    let points = lines.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    anyhow::ensure!(x0 > 0.0 && y0 > 0.0, "{title}: nothing to plot");
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x0 / 1.5..x1 * 1.5).log_scale(),
            (y0 / 2.0..y1 * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("documents (n)")
        .y_desc(y_desc)
        .draw()?;
    let colors = [BLUE, RED, GREEN, MAGENTA];
    for ((name, pts), color) in lines.iter().zip(colors) {
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// `(n, field)` of each entry of a case's `details.series`.
fn series(case: &Case, field: &str, scale: f64) -> Vec<(f64, f64)> {
    case.details["series"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| Some((r["n"].as_f64()?, r[field].as_f64()? * scale)))
                .collect()
        })
        .unwrap_or_default()
}

/// Writes one SVG per scaling case into `dir`; returns the files written.
pub fn write(dir: &Path, cases: &[Case]) -> anyhow::Result<Vec<String>> {
    let mut written = Vec::new();
    for case in cases {
        let (file, title, y, lines): (&str, &str, &str, Vec<Line>) =
            if case.name.starts_with("initial sync") {
                (
                    "initial-sync.svg",
                    "Initial sync of n documents",
                    "seconds",
                    vec![
                        ("Weft, two nodes over loopback", series(case, "weft_s", 1.0)),
                        ("Automerge sync in memory", series(case, "baseline_s", 1.0)),
                    ],
                )
            } else if case.name.starts_with("reconnect") {
                (
                    "reconnect.svg",
                    "Reconnect after 10 changed documents out of n",
                    "bytes on the wire",
                    vec![
                        ("all sync traffic", series(case, "bytes", 1.0)),
                        ("reconciliation only", series(case, "reconcile_bytes", 1.0)),
                    ],
                )
            } else if case.name.starts_with("memory") {
                (
                    "memory.svg",
                    "Resident memory after open + query",
                    "MiB",
                    vec![
                        ("resident (VmRSS)", series(case, "rss_kib", 1.0 / 1024.0)),
                        ("peak (VmHWM)", series(case, "peak_kib", 1.0 / 1024.0)),
                    ],
                )
            } else {
                continue;
            };
        if lines.iter().all(|(_, p)| p.len() < 2) {
            continue;
        }
        let path = dir.join(file);
        chart(&path, title, y, &lines)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
