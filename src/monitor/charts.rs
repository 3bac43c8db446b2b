//! The monitor page's charts: SVG drawn by `plotters` on the server from the
//! same [`MonitorState`](super::MonitorState) the page's numbers come from,
//! so a chart and the number beside it cannot disagree. The SVG backend
//! leaves the glyphs to the browser (plotters' built-in text metrics place
//! the labels), so no font file is needed.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The page's palette.
pub const BLUE: RGBColor = RGBColor(31, 119, 180);
pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub const GREEN: RGBColor = RGBColor(44, 160, 44);
pub const RED: RGBColor = RGBColor(214, 39, 40);
pub const PURPLE: RGBColor = RGBColor(148, 103, 189);
pub const GREY: RGBColor = RGBColor(150, 150, 150);
const INK: RGBColor = RGBColor(60, 60, 60);

/// One line of a line chart: a name, its colour and `(x, y)` points.
pub struct Line<'a> {
    pub name: &'a str,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws into a `width × height` SVG; an error becomes a short note instead.
fn svg(width: u32, height: u32, draw: impl FnOnce(&Area) -> Result<(), String>) -> String {
    let mut out = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw(&root).and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    match result {
        Ok(()) => out,
        Err(e) => format!("<p class=\"note\">chart not drawn: {e}</p>"),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn label_style() -> TextStyle<'static> {
    // plotters' SVG text is 1/1.24 of the size asked: 15 gives ~12 px.
    ("sans-serif", 15).into_font().color(&INK)
}

/// The series' legend box at `position`, in the page's style.
fn legend<'a, 'b: 'a>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(220, 220, 220))
        .label_font(label_style())
        .draw()
        .map_err(err)
}

/// Lines over `x` (seconds relative to now, negative), y from 0; `limit`
/// draws a dashed horizontal line (e.g. `--router-rps`).
pub fn lines(
    y_desc: &str,
    lines: &[Line<'_>],
    limit: Option<(&str, f64)>,
    width: u32,
    height: u32,
) -> String {
    let x_min = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(-60.0_f64, f64::min);
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(limit.map(|l| l.1))
        .fold(1.0_f64, f64::max)
        * 1.1;
    svg(width, height, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(6)
            .x_label_area_size(22)
            .y_label_area_size(52)
            .build_cartesian_2d(x_min..0.0, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(230, 230, 230))
            .x_labels(6)
            .y_labels(5)
            .x_label_formatter(&|x| format!("{:.0} s", x))
            .y_label_formatter(&|y| compact(*y))
            .y_desc(y_desc)
            .label_style(label_style())
            .axis_desc_style(label_style())
            .draw()
            .map_err(err)?;
        for l in lines {
            let color = l.color;
            chart
                .draw_series(LineSeries::new(
                    l.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(l.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
        }
        if let Some((name, y)) = limit {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x_min, y), (0.0, y)],
                    6,
                    4,
                    RED.stroke_width(1),
                ))
                .map_err(err)?
                .label(name)
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], RED));
        }
        if lines.len() > 1 || limit.is_some() {
            legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    })
}

/// Horizontal bars, one per `(label, value)`, top to bottom in the given order.
pub fn bars(items: &[(String, f64)], color: RGBColor, width: u32) -> String {
    let n = items.len().max(1);
    let height = 26 + 20 * n as u32;
    let x_max = items.iter().map(|i| i.1).fold(1.0_f64, f64::max) * 1.08;
    let longest = items.iter().map(|i| i.0.chars().count()).max().unwrap_or(4);
    let label_area = (longest as u32 * 7 + 10).clamp(40, 220);
    svg(width, height, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(4)
            .x_label_area_size(20)
            .y_label_area_size(label_area)
            .build_cartesian_2d(0.0..x_max, (0..n).into_segmented())
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(230, 230, 230))
            .x_labels(5)
            .x_label_formatter(&|x| compact(*x))
            .y_labels(n)
            .y_label_formatter(&|y| match y {
                SegmentValue::CenterOf(i) => n
                    .checked_sub(1 + *i)
                    .and_then(|row| items.get(row))
                    .map_or(String::new(), |item| item.0.clone()),
                _ => String::new(),
            })
            .label_style(label_style())
            .draw()
            .map_err(err)?;
        chart
            .draw_series(items.iter().enumerate().map(|(i, (_, v))| {
                let row = n - 1 - i;
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(row)),
                        (*v, SegmentValue::Exact(row + 1)),
                    ],
                    color.filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                bar
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// Vertical bars over consecutive slots (e.g. hours), with every
/// `label_every`-th slot labelled.
pub fn columns(items: &[(String, f64)], color: RGBColor, width: u32, height: u32) -> String {
    let n = items.len().max(1);
    let y_max = items.iter().map(|i| i.1).fold(1.0_f64, f64::max) * 1.1;
    svg(width, height, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(6)
            .x_label_area_size(22)
            .y_label_area_size(52)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(230, 230, 230))
            .x_labels(n.min(8))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => items.get(*i).map_or(String::new(), |i| i.0.clone()),
                _ => String::new(),
            })
            .y_labels(5)
            .y_label_formatter(&|y| compact(*y))
            .label_style(label_style())
            .draw()
            .map_err(err)?;
        chart
            .draw_series(items.iter().enumerate().map(|(i, (_, v))| {
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), *v),
                    ],
                    color.filled(),
                );
                bar.set_margin(0, 0, 1, 1);
                bar
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// The map: towers (grey dots), stores (blue squares) and the cells where
/// promotions fired (red discs, area by count), on longitude × latitude
/// scaled so that a kilometre is as long north–south as east–west.
pub fn map(
    towers: &[(f64, f64)],
    stores: &[(f64, f64)],
    fired: &[(f64, f64, u64)],
    width: u32,
) -> String {
    let all = || towers.iter().chain(stores.iter());
    let (mut lat0, mut lat1, mut lon0, mut lon1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (lat, lon) in all() {
        lat0 = lat0.min(*lat);
        lat1 = lat1.max(*lat);
        lon0 = lon0.min(*lon);
        lon1 = lon1.max(*lon);
    }
    if lat0 > lat1 {
        return "<p class=\"note\">no towers or stores to draw</p>".to_string();
    }
    let pad_lat = ((lat1 - lat0) * 0.05).max(0.005);
    let pad_lon = ((lon1 - lon0) * 0.05).max(0.005);
    let (lat0, lat1, lon0, lon1) = (
        lat0 - pad_lat,
        lat1 + pad_lat,
        lon0 - pad_lon,
        lon1 + pad_lon,
    );
    let squeeze = ((lat0 + lat1) / 2.0).to_radians().cos().max(0.1);
    let plot_w = f64::from(width.saturating_sub(70));
    let aspect = (lat1 - lat0) / ((lon1 - lon0) * squeeze);
    let height = ((plot_w * aspect) as u32 + 40).clamp(200, 720);
    let most = fired.iter().map(|f| f.2).max().unwrap_or(1).max(1) as f64;
    svg(width, height, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(6)
            .x_label_area_size(22)
            .y_label_area_size(48)
            .build_cartesian_2d(lon0..lon1, lat0..lat1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(235, 235, 235))
            .x_labels(5)
            .y_labels(5)
            .x_label_formatter(&|x| format!("{x:.2}°"))
            .y_label_formatter(&|y| format!("{y:.2}°"))
            .label_style(label_style())
            .draw()
            .map_err(err)?;
        chart
            .draw_series(
                towers
                    .iter()
                    .map(|(lat, lon)| Circle::new((*lon, *lat), 1.5, GREY.filled())),
            )
            .map_err(err)?
            .label("tower")
            .legend(|(x, y)| Circle::new((x + 6, y), 3, GREY.filled()));
        chart
            .draw_series(fired.iter().map(|(lat, lon, n)| {
                let r = 3.0 + 11.0 * (*n as f64 / most).sqrt();
                Circle::new((*lon, *lat), r, RED.mix(0.45).filled())
            }))
            .map_err(err)?
            .label("promotions fired (area ∝ count)")
            .legend(|(x, y)| Circle::new((x + 6, y), 5, RED.mix(0.45).filled()));
        chart
            .draw_series(stores.iter().map(|(lat, lon)| {
                EmptyElement::at((*lon, *lat)) + Rectangle::new([(-4, -4), (4, 4)], BLUE.filled())
            }))
            .map_err(err)?
            .label("store")
            .legend(|(x, y)| Rectangle::new([(x + 2, y - 4), (x + 10, y + 4)], BLUE.filled()));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// A short axis label: 1 234 567 → "1.2M".
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_labels() {
        let l = lines(
            "per s",
            &[Line {
                name: "read",
                color: BLUE,
                points: vec![(-10.0, 5.0), (-5.0, 20.0), (0.0, 12.0)],
            }],
            Some(("--router-rps 15", 15.0)),
            500,
            200,
        );
        assert!(l.starts_with("<svg"), "{l}");
        assert!(l.contains("--router-rps 15"), "the limit's legend");
        let b = bars(&[("S001".into(), 3.0), ("S002".into(), 1.0)], BLUE, 400);
        assert!(b.contains("\nS001\n") && b.contains("\nS002\n"), "{b}");
        let m = map(
            &[(50.0, 8.0), (50.1, 8.2)],
            &[(50.05, 8.1)],
            &[(50.0, 8.0, 3)],
            500,
        );
        assert!(m.contains("<circle") && m.contains("<rect"), "{m}");
        assert!(map(&[], &[], &[], 500).contains("no towers"));
    }

    #[test]
    fn compact_labels() {
        assert_eq!(compact(1_234_567.0), "1.2M");
        assert_eq!(compact(25_000.0), "25k");
        assert_eq!(compact(7.0), "7");
        assert_eq!(compact(0.25), "0.2");
    }
}
