//! The picture of the flows around a system: the systems that send it data on the left, the
//! system in the middle, those it sends data to on the right, one arrow per neighbour (with the
//! number of flows when there are several). Server-side SVG, legible at a glance: beyond
//! [`MAX_PER_SIDE`] neighbours a side shows the busiest and one box for the rest. It is one image
//! (`role="img"`, no links inside: the tables below it link each neighbour) with a title and a
//! text description for screen readers; the page also has the same edges as tables.

use std::fmt::Write as _;

use super::escape;

/// Neighbours drawn on each side before the rest are summarised in one box.
pub const MAX_PER_SIDE: usize = 12;

const WIDTH: i32 = 960;
const BOX_W: i32 = 240;
const BOX_H: i32 = 30;
const GAP: i32 = 12;

/// A neighbour and how many active flows connect it with the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub id: String,
    pub flows: usize,
}

/// Keeps the busiest neighbours (then by id) and counts the rest.
fn shown(mut side: Vec<Neighbour>) -> (Vec<Neighbour>, usize, usize) {
    side.sort_by(|a, b| b.flows.cmp(&a.flows).then_with(|| a.id.cmp(&b.id)));
    if side.len() <= MAX_PER_SIDE {
        return (side, 0, 0);
    }
    let rest = side.split_off(MAX_PER_SIDE - 1);
    let flows = rest.iter().map(|n| n.flows).sum();
    (side, rest.len(), flows)
}

fn names(side: &[Neighbour], more: usize) -> String {
    let mut s = side
        .iter()
        .map(|n| n.id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        let _ = write!(s, " and {more} more");
    }
    s
}

/// The SVG for `system` with its `sources` (sending it data) and `targets` (receiving from it).
pub fn render(system: &str, sources: Vec<Neighbour>, targets: Vec<Neighbour>) -> String {
    let (left, left_more, left_more_flows) = shown(sources);
    let (right, right_more, right_more_flows) = shown(targets);
    let rows = |n: usize, more: usize| n + usize::from(more > 0);
    let count = rows(left.len(), left_more)
        .max(rows(right.len(), right_more))
        .max(1) as i32;
    let height = count * (BOX_H + GAP) + GAP + 30;
    let centre_y = height / 2;
    let description = format!(
        "{} sends data to {}. {} receives data from {}.",
        system,
        if right.is_empty() {
            "no system".to_owned()
        } else {
            names(&right, right_more)
        },
        system,
        if left.is_empty() {
            "no system".to_owned()
        } else {
            names(&left, left_more)
        },
    );
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"picture\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-labelledby=\"picture-title picture-desc\">\
<title id=\"picture-title\">Flows into and out of {}</title><desc id=\"picture-desc\">{}</desc>\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#1b1b1b\"/></marker></defs>\
<text x=\"{}\" y=\"18\" font-size=\"14\" fill=\"#1b1b1b\" text-anchor=\"middle\">sends data to {}</text>\
<text x=\"{}\" y=\"18\" font-size=\"14\" fill=\"#1b1b1b\" text-anchor=\"middle\">{} sends data to</text>",
        escape(system),
        escape(&description),
        12 + BOX_W / 2,
        escape(system),
        WIDTH - 12 - BOX_W / 2,
        escape(system),
    );
    let cx = (WIDTH - BOX_W) / 2;
    let centre_top = centre_y - BOX_H / 2;
    let side = |svg: &mut String,
                list: &[Neighbour],
                more: usize,
                more_flows: usize,
                left: bool| {
        let n = rows(list.len(), more) as i32;
        let top = centre_y - (n * (BOX_H + GAP) - GAP) / 2;
        let x = if left { 12 } else { WIDTH - 12 - BOX_W };
        let entries = list
            .iter()
            .map(|nb| (nb.id.clone(), nb.flows))
            .chain((more > 0).then(|| (format!("and {more} more systems"), more_flows)));
        for (i, (label, flows)) in entries.enumerate() {
            let y = top + i as i32 * (BOX_H + GAP);
            let mid = y + BOX_H / 2;
            // The arrow goes from sender to receiver.
            let (x1, x2) = if left {
                (x + BOX_W, cx)
            } else {
                (cx + BOX_W, x)
            };
            let _ = write!(
                svg,
                "<line x1=\"{x1}\" y1=\"{}\" x2=\"{x2}\" y2=\"{}\" stroke=\"#505a5f\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>",
                if left { mid } else { centre_y },
                if left { centre_y } else { mid },
            );
            let text = if flows > 1 {
                format!("{label} ({flows} flows)")
            } else {
                label.clone()
            };
            let shape = format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\" fill=\"#f3f2f1\" stroke=\"#1b1b1b\"/>\
<text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#1b1b1b\" text-anchor=\"middle\">{}</text>",
                x + BOX_W / 2,
                mid + 4,
                escape(&truncate(&text, 34))
            );
            svg.push_str(&shape);
        }
    };
    side(&mut svg, &left, left_more, left_more_flows, true);
    side(&mut svg, &right, right_more, right_more_flows, false);
    let _ = write!(
        svg,
        "<rect x=\"{cx}\" y=\"{centre_top}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\" fill=\"#1d4f91\" stroke=\"#1b1b1b\"/>\
<text x=\"{}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\" fill=\"#ffffff\" text-anchor=\"middle\">{}</text></svg>",
        cx + BOX_W / 2,
        centre_y + 5,
        escape(&truncate(system, 30))
    );
    svg
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: &str, flows: usize) -> Neighbour {
        Neighbour {
            id: id.into(),
            flows,
        }
    }

    #[test]
    fn a_busy_side_shows_the_busiest_and_summarises_the_rest() {
        let many: Vec<Neighbour> = (0..40).map(|i| n(&format!("s{i:02}"), i % 3 + 1)).collect();
        let svg = render("hub", many, vec![n("dw", 2)]);
        assert_eq!(
            svg.matches("<rect").count(),
            MAX_PER_SIDE + 2,
            "12 on the left, dw, the hub"
        );
        assert!(svg.contains("and 29 more systems"), "{svg}");
        assert!(svg.contains("dw (2 flows)"));
        assert!(
            svg.contains("<desc id=\"picture-desc\">hub sends data to dw. hub receives data from")
        );
    }

    #[test]
    fn names_are_escaped() {
        let svg = render("a<b", vec![n("x&y", 1)], vec![]);
        assert!(svg.contains("a&lt;b") && svg.contains("x&amp;y") && !svg.contains("a<b"));
    }
}

/// An affected system on a change notice's picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    pub id: String,
    pub depth: u32,
    /// The systems it is reached through (at `depth - 1`).
    pub via: Vec<String>,
    /// pending, acknowledged, ready, not_ready.
    pub readiness: String,
}

/// A change notice's picture: the changing system on the left, then a column per depth of the
/// systems it reaches, each box saying (in words, and by its border) what that system answered.
pub fn render_notice(system: &str, reached: &[Reached]) -> String {
    let depths = reached.iter().map(|r| r.depth).max().unwrap_or(0) as i32;
    let col_w = BOX_W + 60;
    let width = 12 + (depths + 1) * col_w;
    let mut columns: Vec<Vec<&Reached>> = vec![Vec::new(); depths as usize + 1];
    for r in reached {
        columns[r.depth as usize].push(r);
    }
    let mut more = vec![0usize; columns.len()];
    for (d, c) in columns.iter_mut().enumerate() {
        if c.len() > MAX_PER_SIDE {
            more[d] = c.len() - (MAX_PER_SIDE - 1);
            c.truncate(MAX_PER_SIDE - 1);
        }
    }
    let rows = columns
        .iter()
        .zip(&more)
        .map(|(c, m)| c.len() + usize::from(*m > 0))
        .max()
        .unwrap_or(1)
        .max(1) as i32;
    let height = rows * (BOX_H + GAP) + GAP + 30;
    let count = |s: &str| reached.iter().filter(|r| r.readiness == s).count();
    let description = format!(
        "A change to {system} reaches {} systems: {} ready, {} not ready, {} acknowledged, {} not yet answered.",
        reached.len(),
        count("ready"),
        count("not_ready"),
        count("acknowledged"),
        count("pending"),
    );
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"picture\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-labelledby=\"picture-title picture-desc\">\
<title id=\"picture-title\">Systems affected by the change to {}</title><desc id=\"picture-desc\">{}</desc>\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#1b1b1b\"/></marker></defs>",
        escape(system),
        escape(&description)
    );
    // Where each drawn box is, to draw the arrows from the systems each is reached through.
    let mut at: std::collections::HashMap<&str, (i32, i32)> = Default::default();
    let top_of = |n: usize| (height + 30 - (n as i32) * (BOX_H + GAP)) / 2;
    let centre_y = (height + 30) / 2 - BOX_H / 2;
    at.insert(system, (12, centre_y));
    let mut boxes = String::new();
    let mut lines = String::new();
    for (d, column) in columns.iter().enumerate().skip(1) {
        let x = 12 + d as i32 * col_w;
        let _ = write!(
            boxes,
            "<text x=\"{}\" y=\"18\" font-size=\"14\" fill=\"#1b1b1b\" text-anchor=\"middle\">depth {d}</text>",
            x + BOX_W / 2
        );
        let n = column.len() + usize::from(more[d] > 0);
        let top = top_of(n);
        for (i, r) in column.iter().enumerate() {
            let y = top + i as i32 * (BOX_H + GAP);
            at.insert(r.id.as_str(), (x, y));
            let (stroke, dash) = match r.readiness.as_str() {
                "ready" => ("#1e6b34", ""),
                "not_ready" => ("#a4161a", ""),
                _ => ("#505a5f", " stroke-dasharray=\"4 3\""),
            };
            let _ = write!(
                boxes,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\" fill=\"#ffffff\" stroke=\"{stroke}\" stroke-width=\"3\"{dash}/>\
<text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#1b1b1b\" text-anchor=\"middle\">{}</text>",
                x + BOX_W / 2,
                y + BOX_H / 2 + 4,
                escape(&truncate(
                    &format!("{}: {}", r.id, r.readiness.replace('_', " ")),
                    34
                ))
            );
        }
        if more[d] > 0 {
            let y = top + column.len() as i32 * (BOX_H + GAP);
            let _ = write!(
                boxes,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\" fill=\"#f3f2f1\" stroke=\"#1b1b1b\"/>\
<text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#1b1b1b\" text-anchor=\"middle\">and {} more systems</text>",
                x + BOX_W / 2,
                y + BOX_H / 2 + 4,
                more[d]
            );
        }
    }
    for r in columns.iter().flatten() {
        let Some(&(tx, ty)) = at.get(r.id.as_str()) else {
            continue;
        };
        let sources: Vec<&str> = if r.depth == 1 {
            vec![system]
        } else {
            r.via.iter().map(String::as_str).collect()
        };
        for s in sources {
            if let Some(&(sx, sy)) = at.get(s) {
                let _ = write!(
                    lines,
                    "<line x1=\"{}\" y1=\"{}\" x2=\"{tx}\" y2=\"{}\" stroke=\"#505a5f\" stroke-width=\"1.2\" marker-end=\"url(#arrow)\"/>",
                    sx + BOX_W,
                    sy + BOX_H / 2,
                    ty + BOX_H / 2
                );
            }
        }
    }
    svg.push_str(&lines);
    svg.push_str(&boxes);
    let _ = write!(
        svg,
        "<rect x=\"12\" y=\"{centre_y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\" fill=\"#1d4f91\" stroke=\"#1b1b1b\"/>\
<text x=\"{}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\" fill=\"#ffffff\" text-anchor=\"middle\">{} (changing)</text></svg>",
        12 + BOX_W / 2,
        centre_y + BOX_H / 2 + 5,
        escape(&truncate(system, 22))
    );
    svg
}
