//! SVG plots of the audit (plotters, SVG backend). Text is laid out with the DejaVu Sans
//! font of `bench/report/fonts/` (ab_glyph; no fontconfig) and written as SVG text.

use crate::StoreError;
use crate::audit::{ControlChart, DailyYield, LoadPointStats};
use crate::layout::path_component;
use chrono::NaiveDate;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// Folder of the SVG files inside the audit's folder.
pub const PLOTS_DIR: &str = "plots";

/// DejaVu Sans (Bitstream Vera licence, bench/report/fonts/LICENSE-DejaVu.txt).
static FONT: &[u8] = include_bytes!("../../report/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn ensure_font() -> Result<(), StoreError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Plot {
            what: "font".into(),
            message: "the bundled font bench/report/fonts/DejaVuSans.ttf cannot be parsed".into(),
        })
    }
}

fn plot_err<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> StoreError + '_ {
    move |e| StoreError::Plot {
        what: what.to_string(),
        message: format!("{e:?}"),
    }
}

fn write_svg(out_dir: &Path, name: &str, svg: &str) -> Result<String, StoreError> {
    let rel = format!("{PLOTS_DIR}/{name}");
    let path = out_dir.join(PLOTS_DIR).join(name);
    std::fs::write(&path, svg).map_err(StoreError::io(&path))?;
    Ok(rel)
}

/// The x axis of a chart over days `from..=to`: day k of the range sits at x = k, and
/// the axis runs half a day beyond either end, so a range of one day is a point in the
/// middle and not an axis from that day to the next.
fn day_axis(from: NaiveDate, to: NaiveDate) -> (std::ops::Range<f64>, i64) {
    let days = (to - from).num_days().max(0);
    (-0.5..days as f64 + 0.5, days)
}

/// The label of a tick at `x`: a date only where a day of the range is (the tick
/// positions the plot chooses may fall between days or past the ends).
fn date_label(from: NaiveDate, days: i64, x: f64) -> String {
    let day = x.round();
    if (x - day).abs() > 1e-6 || day < 0.0 || day > days as f64 {
        return String::new();
    }
    (from + chrono::Days::new(day as u64))
        .format("%m-%d")
        .to_string()
}

/// First-pass yield per day, one line per station.
pub(crate) fn yield_plot(
    daily: &[DailyYield],
    from: NaiveDate,
    to: NaiveDate,
    out_dir: &Path,
) -> Result<Option<String>, StoreError> {
    if daily.is_empty() {
        return Ok(None);
    }
    ensure_font()?;
    let what = "first-pass yield";
    let mut per: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for d in daily {
        if let Some(y) = d.counts.first_pass_yield {
            per.entry(&d.station)
                .or_default()
                .push(((d.date - from).num_days() as f64, 100.0 * y));
        }
    }
    let ymin = per
        .values()
        .flatten()
        .map(|p| p.1)
        .fold(100.0f64, f64::min)
        .min(90.0)
        .floor();
    let (x_range, days) = day_axis(from, to);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err(what))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("First-pass yield per day", (FAMILY, 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(x_range, ymin..100.5)
            .map_err(plot_err(what))?;
        chart
            .configure_mesh()
            .x_labels(10.min(days as usize + 1))
            .x_label_formatter(&|x| date_label(from, days, *x))
            .y_desc("first-pass yield, %")
            .draw()
            .map_err(plot_err(what))?;
        for (i, (station, pts)) in per.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(1)))
                .map_err(plot_err(what))?
                .label(*station)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            // A marker per day: a station with one day of runs has no line to draw.
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 2, color.filled())))
                .map_err(plot_err(what))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err(what))?;
        root.present().map_err(plot_err(what))?;
    }
    write_svg(out_dir, "yield.svg", &svg).map(Some)
}

/// Histogram of the errors of a load point, with the ±MPE limits and the mean.
pub(crate) fn histogram_plot(lp: &LoadPointStats, out_dir: &Path) -> Result<String, StoreError> {
    ensure_font()?;
    let what = format!("histogram {} {}", lp.step_name, lp.port);
    let h = &lp.histogram;
    let (x0, x1) = match (h.bins.first(), h.bins.last()) {
        (Some(a), Some(b)) => (a.lo, b.hi),
        _ => (-lp.mpe_percent, lp.mpe_percent),
    };
    let (x0, x1) = (x0.min(-lp.mpe_percent), x1.max(lp.mpe_percent));
    let pad = (x1 - x0) * 0.03;
    // plotters loops for ever laying out the ticks of a range that is not finite.
    if !(x0 - pad).is_finite() || !(x1 + pad).is_finite() {
        return Err(StoreError::Argument(format!(
            "{what}: errors from {x0} to {x1} % cannot be drawn (are the store's errors \
             measured values?)"
        )));
    }
    let ymax = h.bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (480, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err(&what))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}, {} (n = {})", lp.step_name, lp.port, lp.n),
                (FAMILY, 14),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0f64..ymax)
            .map_err(plot_err(&what))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("error, %")
            .x_labels(8)
            .y_labels(5)
            .label_style((FAMILY, 11))
            .draw()
            .map_err(plot_err(&what))?;
        chart
            .draw_series(h.bins.iter().filter(|b| b.count > 0).map(|b| {
                Rectangle::new([(b.lo, 0.0), (b.hi, b.count as f64)], PALETTE[0].filled())
            }))
            .map_err(plot_err(&what))?;
        let red = RGBColor(200, 0, 0);
        for x in [-lp.mpe_percent, lp.mpe_percent] {
            chart
                .draw_series(LineSeries::new([(x, 0.0), (x, ymax)], red.stroke_width(2)))
                .map_err(plot_err(&what))?;
        }
        // A mean beyond the bins (errors far outside ±3 MPE, counted in the report's
        // row) is not drawn: it would lie off the chart, and plotters overflows mapping
        // a value that far out.
        if lp.mean.is_finite() && (x0 - pad..=x1 + pad).contains(&lp.mean) {
            chart
                .draw_series(LineSeries::new(
                    [(lp.mean, 0.0), (lp.mean, ymax)],
                    BLACK.stroke_width(1),
                ))
                .map_err(plot_err(&what))?;
        }
        root.present().map_err(plot_err(&what))?;
    }
    let name = format!(
        "hist-{:02}-{}-{}.svg",
        lp.step_index,
        path_component(&lp.step_name),
        path_component(&lp.port)
    );
    write_svg(out_dir, &name, &svg)
}

/// X̄ chart: daily means, centre line, ±3σ/√n limits; days out of control in red.
pub(crate) fn control_chart_plot(
    c: &ControlChart,
    from: NaiveDate,
    to: NaiveDate,
    out_dir: &Path,
) -> Result<String, StoreError> {
    ensure_font()?;
    let what = format!("control chart {} {}", c.station, c.step_name);
    let x = |d: NaiveDate| (d - from).num_days() as f64;
    let mut ylo = c.center;
    let mut yhi = c.center;
    for d in &c.days {
        for v in [Some(d.mean), d.lcl, d.ucl].into_iter().flatten() {
            ylo = ylo.min(v);
            yhi = yhi.max(v);
        }
    }
    let pad = ((yhi - ylo) * 0.08).max(1e-3);
    // plotters loops for ever laying out the ticks of a range that is not finite.
    if !(ylo - pad).is_finite() || !(yhi + pad).is_finite() {
        return Err(StoreError::Argument(format!(
            "{what}: daily means from {ylo} to {yhi} % cannot be drawn (are the store's \
             errors measured values?)"
        )));
    }
    let (x_range, days) = day_axis(from, to);
    let (x_first, x_last) = (x_range.start, x_range.end);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (480, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err(&what))?;
        let title = if c.drift_suspected {
            format!("{} · {} (drift)", c.station, c.step_name)
        } else {
            format!("{} · {}", c.station, c.step_name)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 14))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(52)
            .build_cartesian_2d(x_range, (ylo - pad)..(yhi + pad))
            .map_err(plot_err(&what))?;
        chart
            .configure_mesh()
            .x_labels(6.min(days as usize + 1))
            .y_labels(6)
            .x_label_formatter(&|v| date_label(from, days, *v))
            .y_desc("daily mean error, %")
            .label_style((FAMILY, 11))
            .draw()
            .map_err(plot_err(&what))?;
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(LineSeries::new(
                [(x_first, c.center), (x_last, c.center)],
                grey.stroke_width(1),
            ))
            .map_err(plot_err(&what))?;
        let red = RGBColor(200, 0, 0);
        for lim in [
            c.days
                .iter()
                .filter_map(|d| d.ucl.map(|u| (x(d.date), u)))
                .collect::<Vec<_>>(),
            c.days
                .iter()
                .filter_map(|d| d.lcl.map(|l| (x(d.date), l)))
                .collect::<Vec<_>>(),
        ] {
            chart
                .draw_series(LineSeries::new(lim, red.mix(0.6).stroke_width(1)))
                .map_err(plot_err(&what))?;
        }
        chart
            .draw_series(LineSeries::new(
                c.days.iter().map(|d| (x(d.date), d.mean)),
                PALETTE[0].stroke_width(1),
            ))
            .map_err(plot_err(&what))?;
        chart
            .draw_series(c.days.iter().map(|d| {
                let color = if d.out_of_control { red } else { PALETTE[0] };
                Circle::new((x(d.date), d.mean), 2, color.filled())
            }))
            .map_err(plot_err(&what))?;
        root.present().map_err(plot_err(&what))?;
    }
    let name = format!(
        "control-{}-{:02}-{}.svg",
        path_component(&c.station),
        c.step_index,
        path_component(&c.step_name)
    );
    write_svg(out_dir, &name, &svg)
}
