//! Plots of a run record, as PNG and SVG:
//! - error versus current per power factor for each port, with the ±MPE limits as steps
//!   and the expanded uncertainty as error bars, and below it each point's U on a
//!   logarithmic scale of its own (against the limits a U of 0.003 % is under a pixel);
//! - the scatter of the meter's pulse intervals for each accuracy point and port, from the
//!   raw pulse timestamps.
//!
//! Text is drawn with the DejaVu Sans font bundled in `fonts/` (ab_glyph; no fontconfig),
//! and nothing in a file depends on the clock, so the same record gives the same bytes.

use crate::RenderError;
use crate::glyphs::{FONT_BYTES, Typeset};
use crate::view::{fmt_num, fmt_sig, pf_label};
use meterbench_metrology::LoadKind;
use meterbench_runner::record::{PortResult, RunRecord, StepKind, StepRecord};
use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendCoord, DrawingErrorKind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Registered under the generic family, so the SVG files name a font every viewer has.
const FAMILY: &str = "sans-serif";

const ERROR_PLOT_SIZE: (u32, u32) = (1000, 820);
/// Height of the panel below the error chart that shows each point's U, px.
const U_PANEL_HEIGHT: u32 = 210;
const PULSE_PLOT_SIZE: (u32, u32) = (1200, 460);

fn ensure_font() -> Result<(), RenderError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(RenderError::Plot {
            what: "font".into(),
            message: "the bundled font fonts/DejaVuSans.ttf cannot be parsed".into(),
        })
    }
}

/// Write every plot of the record into `out_dir` (created if missing), PNG and SVG of
/// each, and return the paths written in a stable order.
pub fn render_plots(record: &RunRecord, out_dir: &Path) -> Result<Vec<PathBuf>, RenderError> {
    ensure_font()?;
    std::fs::create_dir_all(out_dir).map_err(|source| RenderError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();

    for port in &record.dut.ports {
        let Some(data) = ErrorPlot::from_record(record, port) else {
            continue;
        };
        let stem = format!("error-vs-current-{}", slug(port));
        let what = format!("error vs current, port {port}");
        let png = out_dir.join(format!("{stem}.png"));
        write_png(&png, ERROR_PLOT_SIZE, &what, |root| data.draw(root))?;
        written.push(png);
        let svg = out_dir.join(format!("{stem}.svg"));
        write_file(&svg, data.svg()?.as_bytes())?;
        written.push(svg);
    }

    for step in record.steps.iter().filter(|s| s.kind == StepKind::Accuracy) {
        let Some(data) = PulsePlot::from_step(step, record.counter_timebase_hz) else {
            continue;
        };
        let stem = format!("pulse-intervals-{:02}-{}", step.index, slug(&step.name));
        let what = format!("pulse intervals, step {}", step.name);
        let png = out_dir.join(format!("{stem}.png"));
        write_png(&png, PULSE_PLOT_SIZE, &what, |root| data.draw(root))?;
        written.push(png);
        let svg_path = out_dir.join(format!("{stem}.svg"));
        let mut s = String::new();
        {
            let root = svg(&mut s, PULSE_PLOT_SIZE).into_drawing_area();
            data.draw(&root).map_err(|m| plot_error(&what, m))?;
            root.present()
                .map_err(|e| plot_error(&what, e.to_string()))?;
        }
        write_file(&svg_path, s.as_bytes())?;
        written.push(svg_path);
    }
    Ok(written)
}

/// The error-versus-current plot of one port as an SVG document, for embedding in the
/// certificate; `None` when the port has no accuracy results.
pub fn error_plot_svg(record: &RunRecord, port: &str) -> Result<Option<String>, RenderError> {
    ensure_font()?;
    ErrorPlot::from_record(record, port)
        .map(|d| d.svg())
        .transpose()
}

/// A plot drawn into memory and written as a PNG. The encoder's default (every filter
/// tried on every row, balanced compression) took a fifth of a whole bundle's time; a
/// plot's flat colours compress well with one fixed filter and fast compression.
fn write_png(
    path: &Path,
    size: (u32, u32),
    what: &str,
    draw: impl FnOnce(&DrawingArea<Typeset<BitMapBackend<'_>>, Shift>) -> Result<(), String>,
) -> Result<(), RenderError> {
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = Typeset {
            inner: BitMapBackend::with_buffer(&mut rgb, size),
            rasterise: true,
        }
        .into_drawing_area();
        draw(&root).map_err(|m| plot_error(what, m))?;
        root.present()
            .map_err(|e| plot_error(what, e.to_string()))?;
    }
    let mut bytes = Vec::with_capacity(rgb.len() / 8);
    {
        let mut encoder = png::Encoder::new(&mut bytes, size.0, size.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // `Fastest`: fdeflate with the `Up` filter, which turns a plot's many blank and
        // repeated rows into zeros.
        encoder.set_compression(png::Compression::Fastest);
        let mut writer = encoder
            .write_header()
            .map_err(|e| plot_error(what, e.to_string()))?;
        writer
            .write_image_data(&rgb)
            .map_err(|e| plot_error(what, e.to_string()))?;
    }
    write_file(path, &bytes)
}

fn svg(out: &mut String, size: (u32, u32)) -> Typeset<SVGBackend<'_>> {
    Typeset {
        inner: SVGBackend::with_string(out, size),
        rasterise: false,
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RenderError> {
    std::fs::write(path, bytes).map_err(|source| RenderError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn plot_error(what: &str, message: String) -> RenderError {
    RenderError::Plot {
        what: what.to_string(),
        message,
    }
}

/// File-name-safe form of a name: `Iref PF0.5i` → `iref-pf0-5i`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() { "x".into() } else { out }
}

type DrawResult = Result<(), String>;

fn de<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

// ---------------------------------------------------------------------------------------
// Error versus current

struct ErrorPoint {
    current_a: f64,
    error: f64,
    u: f64,
    accepted: bool,
}

struct ErrorSeries {
    label: String,
    points: Vec<ErrorPoint>,
}

/// One MPE band segment: `±mpe` over `[from_a, to_a]`.
#[derive(Clone, Copy, PartialEq)]
struct LimitSegment {
    from_a: f64,
    to_a: f64,
    mpe: f64,
}

struct ErrorPlot {
    port: String,
    /// Names of the load currents (`Imin`, `Iref`, …) at their values, A.
    named_currents: Vec<(f64, String)>,
    series: Vec<ErrorSeries>,
    balanced_limits: Vec<LimitSegment>,
    single_phase_limits: Vec<LimitSegment>,
}

impl ErrorPlot {
    fn from_record(record: &RunRecord, port: &str) -> Option<ErrorPlot> {
        let mut series: Vec<ErrorSeries> = Vec::new();
        let mut balanced = Vec::new();
        let mut single = Vec::new();
        let mut named_currents: Vec<(f64, String)> = Vec::new();
        for step in &record.steps {
            for p in step.ports.iter().filter(|p| p.port == port) {
                let Some(PortResult::Accuracy {
                    error_percent,
                    expanded_u_percent,
                    limit,
                    decision,
                    ..
                }) = &p.result
                else {
                    continue;
                };
                let seg = LimitSegment {
                    from_a: limit.current.from_a,
                    to_a: limit.current.to_a,
                    mpe: limit.mpe_percent,
                };
                let label = match limit.load {
                    LoadKind::Balanced => {
                        push_unique(&mut balanced, seg);
                        format!("PF {}", pf_label(&step.load.power_factor))
                    }
                    LoadKind::SinglePhase => {
                        push_unique(&mut single, seg);
                        let phases: Vec<String> =
                            step.load.phases.iter().map(|p| format!("{p:?}")).collect();
                        format!(
                            "PF {}, {} only",
                            pf_label(&step.load.power_factor),
                            phases.join("+")
                        )
                    }
                };
                if !step.load.current_name.is_empty()
                    && !named_currents
                        .iter()
                        .any(|(a, n)| *a == step.load.current_a || *n == step.load.current_name)
                {
                    named_currents.push((step.load.current_a, step.load.current_name.clone()));
                }
                let point = ErrorPoint {
                    current_a: step.load.current_a,
                    error: *error_percent,
                    u: expanded_u_percent.abs(),
                    accepted: decision.accepted,
                };
                match series.iter_mut().find(|s| s.label == label) {
                    Some(s) => s.points.push(point),
                    None => series.push(ErrorSeries {
                        label,
                        points: vec![point],
                    }),
                }
            }
        }
        if series.is_empty() {
            return None;
        }
        for v in [&mut balanced, &mut single] {
            v.sort_by(|a, b| a.from_a.total_cmp(&b.from_a).then(a.mpe.total_cmp(&b.mpe)));
        }
        Some(ErrorPlot {
            port: port.to_string(),
            named_currents,
            series,
            balanced_limits: balanced,
            single_phase_limits: single,
        })
    }

    fn svg(&self) -> Result<String, RenderError> {
        let what = format!("error vs current, port {}", self.port);
        let mut s = String::new();
        {
            let root = svg(&mut s, ERROR_PLOT_SIZE).into_drawing_area();
            self.draw(&root).map_err(|m| plot_error(&what, m))?;
            root.present()
                .map_err(|e| plot_error(&what, e.to_string()))?;
        }
        Ok(s)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(de)?;
        let width = root.dim_in_pixel().0;
        let root = root
            .titled(
                &format!("Port {}: error versus current", self.port),
                (FAMILY, 24),
            )
            .map_err(de)?;
        let (body, foot) = root.split_vertically(root.dim_in_pixel().1.saturating_sub(24));
        let (plots, legend) = body.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        let (plot, u_panel) =
            plots.split_vertically(plots.dim_in_pixel().1.saturating_sub(U_PANEL_HEIGHT));

        let all_points = self.series.iter().flat_map(|s| &s.points);
        let limits = self.balanced_limits.iter().chain(&self.single_phase_limits);
        let mut lo = f64::INFINITY;
        let mut hi: f64 = 0.0;
        let mut y_max: f64 = 0.0;
        for p in all_points {
            lo = lo.min(p.current_a);
            hi = hi.max(p.current_a);
            y_max = y_max.max(p.error.abs() + p.u);
        }
        for l in limits {
            lo = lo.min(l.from_a);
            hi = hi.max(l.to_a);
            y_max = y_max.max(l.mpe);
        }
        let (x_lo, x_hi) = (lo / 1.8, hi * 1.8);
        let (bold, light) = log_ticks(x_lo, x_hi);
        let (u_bold, u_light) = (bold.clone(), light.clone());
        // Head room for the names of the currents along the top.
        let y_max = nice_ceiling(y_max * 1.25);

        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_top(4)
            .x_label_area_size(50)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (x_lo..x_hi)
                    .log_scale()
                    .with_key_points(bold)
                    .with_light_points(light),
                -y_max..y_max,
            )
            .map_err(de)?;
        chart
            .configure_mesh()
            .y_labels(11)
            .y_max_light_lines(1)
            .x_desc("current per phase (A), logarithmic scale")
            .y_desc("error (%)")
            .x_label_formatter(&|x| fmt_num(round_sig(*x, 3)))
            .y_label_formatter(&|y| fmt_num(round_sig(*y, 3) + 0.0))
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 16))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()
            .map_err(de)?;

        let grey = RGBColor(150, 150, 150);
        for (a, name) in &self.named_currents {
            chart
                .draw_series(DashedLineSeries::new(
                    [(*a, -y_max), (*a, 0.9 * y_max)],
                    3,
                    4,
                    grey.stroke_width(1),
                ))
                .map_err(de)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    name.clone(),
                    (*a, y_max),
                    (FAMILY, 14)
                        .into_font()
                        .color(&RGBColor(90, 90, 90))
                        .pos(Pos::new(HPos::Center, VPos::Top)),
                )))
                .map_err(de)?;
        }
        chart
            .draw_series(LineSeries::new(
                [(x_lo, 0.0), (x_hi, 0.0)],
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(de)?;

        let mut entries = Vec::new();
        for (limits, color, dashed, label) in [
            (
                &self.balanced_limits,
                LIMIT_RED,
                false,
                "±MPE, balanced load",
            ),
            (
                &self.single_phase_limits,
                LIMIT_ORANGE,
                true,
                "±MPE, one phase loaded",
            ),
        ] {
            if limits.is_empty() {
                continue;
            }
            for sign in [1.0, -1.0] {
                for line in step_lines(limits, sign) {
                    let style = color.stroke_width(2);
                    if dashed {
                        chart
                            .draw_series(DashedLineSeries::new(line, 9, 6, style))
                            .map_err(de)?;
                    } else {
                        chart
                            .draw_series(LineSeries::new(line, style))
                            .map_err(de)?;
                    }
                }
            }
            entries.push(LegendEntry::Line {
                color,
                dashed,
                label: label.to_string(),
            });
        }

        // Every point at its true current: spreading points at one current apart moved the
        // Imin point left of Imin, out of its own limit band. Each series has its own
        // marker shape, so points at one current stay told apart.
        for (i, s) in self.series.iter().enumerate() {
            let color = series_color(i);
            let pts: Vec<(f64, &ErrorPoint)> = s.points.iter().map(|p| (p.current_a, p)).collect();
            chart
                .draw_series(pts.iter().map(|(x, p)| {
                    ErrorBar::new_vertical(
                        *x,
                        p.error - p.u,
                        p.error,
                        p.error + p.u,
                        color.stroke_width(2),
                        10,
                    )
                }))
                .map_err(de)?;
            for (x, p) in &pts {
                chart
                    .plotting_area()
                    .draw(&marker(i, (*x, p.error), color))
                    .map_err(de)?;
            }
            for (x, p) in pts.iter().filter(|(_, p)| !p.accepted) {
                chart
                    .plotting_area()
                    .draw(&Circle::new((*x, p.error), 12, LIMIT_RED.stroke_width(3)))
                    .map_err(de)?;
            }
            entries.push(LegendEntry::Marker {
                shape: i,
                color,
                label: s.label.clone(),
            });
        }
        if self
            .series
            .iter()
            .flat_map(|s| &s.points)
            .any(|p| !p.accepted)
        {
            entries.push(LegendEntry::Fail);
        }
        draw_legend(&legend, &entries)?;
        self.draw_u_panel(&u_panel, (x_lo, x_hi), (u_bold, u_light))?;

        foot.draw(&Text::new(
            "Above, error bars ±U often lie within the marker at this scale; below, each point's U \
             on a scale of its own. Every point is at its true current; the results table gives each value.",
            (16, 2),
            (FAMILY, 13).into_font().color(&RGBColor(100, 100, 100)),
        ))
        .map_err(de)?;
        Ok(())
    }
}

impl ErrorPlot {
    /// Each point's expanded uncertainty on a logarithmic scale of its own, under the
    /// error chart and on its current axis: against the limits a U of 0.003 % is a
    /// fraction of a pixel, here it is a mark that can be read.
    fn draw_u_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (x_lo, x_hi): (f64, f64),
        (bold, light): (Vec<f64>, Vec<f64>),
    ) -> DrawResult {
        let us = self.series.iter().flat_map(|s| &s.points).map(|p| p.u);
        let (u_lo, u_hi) = u_axis(us);
        let (u_bold, u_light) = log_ticks(u_lo, u_hi);
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .margin_top(0)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (x_lo..x_hi)
                    .log_scale()
                    .with_key_points(bold)
                    .with_light_points(light),
                (u_lo..u_hi)
                    .log_scale()
                    .with_key_points(u_bold)
                    .with_light_points(u_light),
            )
            .map_err(de)?;
        chart
            .configure_mesh()
            .y_desc("U (%), k = 2")
            .x_label_formatter(&|x| fmt_num(round_sig(*x, 3)))
            .y_label_formatter(&|y| fmt_num(round_sig(*y, 3)))
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()
            .map_err(de)?;
        for (i, s) in self.series.iter().enumerate() {
            let color = series_color(i);
            for p in s.points.iter().filter(|p| p.u > 0.0) {
                chart
                    .draw_series(LineSeries::new(
                        [(p.current_a, u_lo), (p.current_a, p.u)],
                        color.mix(0.5).stroke_width(2),
                    ))
                    .map_err(de)?;
                chart
                    .plotting_area()
                    .draw(&marker(i, (p.current_a, p.u), color))
                    .map_err(de)?;
            }
        }
        Ok(())
    }
}

/// The U axis: whole 1-2-5 steps around the smallest and the largest U, a decade at
/// least, so every point's U sits inside it with room.
fn u_axis(us: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = us
        .filter(|u| *u > 0.0 && u.is_finite())
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), u| {
            (lo.min(u), hi.max(u))
        });
    if !lo.is_finite() {
        return (0.001, 1.0);
    }
    let floor = |x: f64| {
        let mag = 10f64.powf(x.log10().floor());
        [5.0, 2.0, 1.0]
            .into_iter()
            .map(|m| m * mag)
            .find(|v| *v <= x * (1.0 + 1e-12))
            .unwrap_or(mag)
    };
    let lo = floor(lo / 1.5);
    let hi = nice_ceiling(hi * 1.5).max(lo * 10.0);
    (lo, hi)
}

const LEGEND_WIDTH: u32 = 240;
const LIMIT_RED: RGBColor = RGBColor(200, 30, 30);
const LIMIT_ORANGE: RGBColor = RGBColor(230, 120, 0);

enum LegendEntry {
    Line {
        color: RGBColor,
        dashed: bool,
        label: String,
    },
    Marker {
        shape: usize,
        color: RGBColor,
        label: String,
    },
    Fail,
}

/// The legend beside the plot, where it can hide no point and no limit.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> DrawResult {
    let text = (FAMILY, 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let row = 30;
    let top = 24;
    let bottom = top + row * entries.len() as i32 + 6;
    area.draw(&Rectangle::new(
        [(4, top - 18), (LEGEND_WIDTH as i32 - 10, bottom)],
        RGBColor(200, 200, 200).stroke_width(1),
    ))
    .map_err(de)?;
    for (k, e) in entries.iter().enumerate() {
        let y = top + row * k as i32;
        let (x0, x1) = (14, 46);
        let label = match e {
            LegendEntry::Line {
                color,
                dashed,
                label,
            } => {
                let style = color.stroke_width(2);
                if *dashed {
                    for (a, b) in [(x0, x0 + 9), (x0 + 15, x0 + 24), (x0 + 30, x1)] {
                        area.draw(&PathElement::new([(a, y), (b, y)], style))
                            .map_err(de)?;
                    }
                } else {
                    area.draw(&PathElement::new([(x0, y), (x1, y)], style))
                        .map_err(de)?;
                }
                label.as_str()
            }
            LegendEntry::Marker {
                shape,
                color,
                label,
            } => {
                area.draw(&marker(*shape, ((x0 + x1) / 2, y), *color))
                    .map_err(de)?;
                label.as_str()
            }
            LegendEntry::Fail => {
                area.draw(&Circle::new(
                    ((x0 + x1) / 2, y),
                    11,
                    LIMIT_RED.stroke_width(3),
                ))
                .map_err(de)?;
                "not accepted (FAIL)"
            }
        };
        area.draw(&Text::new(label.to_string(), (x1 + 12, y), text.clone()))
            .map_err(de)?;
    }
    Ok(())
}

fn series_color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 6] = [
        RGBColor(31, 95, 180),
        RGBColor(20, 140, 70),
        RGBColor(140, 60, 170),
        RGBColor(0, 150, 170),
        RGBColor(120, 90, 40),
        RGBColor(90, 90, 90),
    ];
    COLORS[i % COLORS.len()]
}

/// One marker shape per series, so the series stay apart in grey print too.
fn marker<C>(shape: usize, at: C, color: RGBColor) -> Marker<C> {
    Marker { at, shape, color }
}

struct Marker<C> {
    at: C,
    shape: usize,
    color: RGBColor,
}

impl<'a, C: 'a> PointCollection<'a, C> for &'a Marker<C> {
    type Point = &'a C;
    type IntoIter = std::iter::Once<&'a C>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<C, DB: DrawingBackend> Drawable<DB> for Marker<C> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = points.next() else {
            return Ok(());
        };
        let fill = self.color.filled();
        match self.shape % 4 {
            0 => backend.draw_circle((x, y), 6, &fill, true),
            1 => backend.fill_polygon([(x, y - 8), (x - 7, y + 5), (x + 7, y + 5)], &fill),
            2 => backend.draw_rect((x - 5, y - 5), (x + 5, y + 5), &fill, true),
            _ => {
                let stroke = self.color.stroke_width(3);
                backend.draw_path([(x - 6, y - 6), (x + 6, y + 6)], &stroke)?;
                backend.draw_path([(x - 6, y + 6), (x + 6, y - 6)], &stroke)
            }
        }
    }
}

/// Polylines of ±MPE over contiguous current ranges, with vertical steps between ranges.
fn step_lines(segments: &[LimitSegment], sign: f64) -> Vec<Vec<(f64, f64)>> {
    let mut lines: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut last_to: Option<f64> = None;
    for s in segments {
        let contiguous = last_to.is_some_and(|t| (t - s.from_a).abs() <= 1e-9 * t.max(1.0));
        if !contiguous || lines.is_empty() {
            lines.push(Vec::new());
        }
        let line = lines.last_mut().expect("pushed above");
        line.push((s.from_a, sign * s.mpe));
        line.push((s.to_a, sign * s.mpe));
        last_to = Some(s.to_a);
    }
    lines
}

fn push_unique(v: &mut Vec<LimitSegment>, s: LimitSegment) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Labelled ticks at 1, 2, 5 × 10^n and grid lines at every 1…9 × 10^n within `lo..hi`.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut bold, mut light) = (Vec::new(), Vec::new());
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return (bold, light);
    }
    for decade in lo.log10().floor() as i32..=hi.log10().ceil() as i32 {
        for m in 1..=9 {
            let x = round_sig(f64::from(m) * 10f64.powi(decade), 3);
            if x < lo || x > hi {
                continue;
            }
            if matches!(m, 1 | 2 | 5) {
                bold.push(x);
            } else {
                light.push(x);
            }
        }
    }
    (bold, light)
}

/// A round axis limit at or above `x`: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^n.
fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(x.log10().floor());
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * mag >= x * (1.0 - 1e-12) {
            return m * mag;
        }
    }
    10.0 * mag
}

fn round_sig(x: f64, sig: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let p = 10f64.powi(sig - 1 - x.abs().log10().floor() as i32);
    (x * p).round() / p
}

// ---------------------------------------------------------------------------------------
// Pulse-interval scatter

struct PortIntervals {
    port: String,
    /// Deviation of each interval from the mean interval, µs.
    deviations_us: Vec<f64>,
    mean_s: f64,
    std_us: f64,
}

struct PulsePlot {
    title: String,
    ports: Vec<PortIntervals>,
}

impl PulsePlot {
    fn from_step(step: &StepRecord, timebase_hz: f64) -> Option<PulsePlot> {
        if timebase_hz.is_nan() || timebase_hz <= 0.0 {
            return None;
        }
        let ports: Vec<PortIntervals> = step
            .ports
            .iter()
            .filter_map(|p| {
                let intervals: Vec<f64> = p
                    .pulses
                    .windows(2)
                    .map(|w| {
                        w[1].timestamp_ticks.wrapping_sub(w[0].timestamp_ticks) as f64 / timebase_hz
                    })
                    .collect();
                if intervals.len() < 2 {
                    return None;
                }
                let n = intervals.len() as f64;
                let mean = intervals.iter().sum::<f64>() / n;
                let deviations_us: Vec<f64> = intervals.iter().map(|x| (x - mean) * 1e6).collect();
                let var = deviations_us.iter().map(|d| d * d).sum::<f64>() / (n - 1.0);
                Some(PortIntervals {
                    port: p.port.clone(),
                    deviations_us,
                    mean_s: mean,
                    std_us: var.sqrt(),
                })
            })
            .collect();
        if ports.is_empty() {
            return None;
        }
        Some(PulsePlot {
            title: format!(
                "{} ({} A, PF {}): pulse-interval deviation from the mean",
                step.name,
                fmt_num(step.load.current_a),
                pf_label(&step.load.power_factor)
            ),
            ports,
        })
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(de)?;
        let root = root.titled(&self.title, (FAMILY, 22)).map_err(de)?;
        let panels = root.split_evenly((1, self.ports.len()));
        // One scale for all ports, so their scatter compares at a glance.
        let max = self
            .ports
            .iter()
            .flat_map(|p| &p.deviations_us)
            .fold(0.0f64, |m, d| m.max(d.abs()))
            .max(1.0);
        let y = nice_ceiling(max * 1.15);
        for (panel, p) in panels.iter().zip(&self.ports) {
            let n = p.deviations_us.len();
            let radius = if n > 150 { 2 } else { 3 };
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!(
                        "port {}: mean {} ms, s = {} µs, {} intervals",
                        p.port,
                        fmt_sig(p.mean_s * 1e3, 6),
                        fmt_num(round_sig(p.std_us, 3)),
                        n
                    ),
                    (FAMILY, 16),
                )
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..(n as f64 + 1.0), -y..y)
                .map_err(de)?;
            chart
                .configure_mesh()
                .x_desc("interval index")
                .y_desc("deviation (µs)")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .x_max_light_lines(2)
                .y_max_light_lines(2)
                .y_label_formatter(&|v| fmt_num(round_sig(*v, 3) + 0.0))
                .label_style((FAMILY, 14))
                .axis_desc_style((FAMILY, 15))
                .light_line_style(RGBColor(235, 235, 235))
                .bold_line_style(RGBColor(205, 205, 205))
                .draw()
                .map_err(de)?;
            chart
                .draw_series(LineSeries::new(
                    [(0.0, 0.0), (n as f64 + 1.0, 0.0)],
                    BLACK.mix(0.5).stroke_width(1),
                ))
                .map_err(de)?;
            chart
                .draw_series(p.deviations_us.iter().enumerate().map(|(i, d)| {
                    Circle::new(((i + 1) as f64, *d), radius, series_color(0).filled())
                }))
                .map_err(de)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Iref PF0.5i"), "iref-pf0-5i");
        assert_eq!(slug("Iref PF1 L1"), "iref-pf1-l1");
        assert_eq!(slug("  "), "x");
    }

    #[test]
    fn limit_steps_join_contiguous_ranges() {
        let segs = [
            LimitSegment {
                from_a: 0.25,
                to_a: 0.5,
                mpe: 1.5,
            },
            LimitSegment {
                from_a: 0.5,
                to_a: 32.0,
                mpe: 1.0,
            },
        ];
        let lines = step_lines(&segs, -1.0);
        assert_eq!(
            lines,
            vec![vec![(0.25, -1.5), (0.5, -1.5), (0.5, -1.0), (32.0, -1.0)]]
        );
    }

    #[test]
    fn log_axis_ticks() {
        let (bold, light) = log_ticks(0.13, 58.0);
        assert_eq!(bold, vec![0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        assert_eq!(light.first(), Some(&0.3));
        assert_eq!(light.last(), Some(&40.0));
    }

    #[test]
    fn nice_axis_limits() {
        assert_eq!(nice_ceiling(1.15), 1.2);
        assert_eq!(nice_ceiling(2.3), 2.5);
        assert_eq!(nice_ceiling(0.07), 0.08);
    }

    /// The U panel holds every U with room, and on its log scale the smallest of a run's
    /// U (0.0029 % at Iref against 0.12 % at Imin) spans a readable share of the panel:
    /// log(U / lo) / log(hi / lo) of its height.
    #[test]
    fn the_u_axis_holds_every_u_with_room() {
        let us = [0.0029, 0.0045, 0.021, 0.12];
        let (lo, hi) = u_axis(us.into_iter());
        assert_eq!((lo, hi), (0.001, 0.2));
        for u in us {
            assert!(lo < u && u < hi, "{u} in {lo}..{hi}");
            let share = (u / lo).log10() / (hi / lo).log10();
            assert!(share > 0.1, "{u}: {share}");
        }
        // One U alone still gets a decade; no U at all a default axis.
        let (lo, hi) = u_axis([0.01].into_iter());
        assert!(lo < 0.01 && hi >= 10.0 * lo, "{lo}..{hi}");
        assert_eq!(u_axis(std::iter::empty()), (0.001, 1.0));
    }
}
