//! Small charts as inline SVG, drawn on the server (no scripts, nothing fetched: the console's
//! content security policy allows neither). Each chart is an image with a text label, and
//! each bar carries its value as a tooltip (`<title>`).

use bluegreen::delivery::{StepTime, human};
use maud::{Markup, html};

/// Width and height of a chart's drawing area, in SVG units (the page scales it).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;
/// Room under the bars for their labels.
const LABELS: f64 = 18.0;

/// One colour per step, in the order steps first appear; cycled after the last.
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// A bar per `(label, value)`, scaled to the largest value; `describe` says a value for the
/// tooltip and the label (`3 deployments`, `15m 05s`).
pub fn bars(title: &str, points: &[(String, f64)], describe: impl Fn(f64) -> String) -> Markup {
    let top = points.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let slot = WIDTH / points.len().max(1) as f64;
    html! {
        svg class="chart" viewBox={ "0 0 " (WIDTH) " " (HEIGHT + LABELS) } role="img" aria-label=(title) {
            title { (title) }
            @for (i, (label, value)) in points.iter().enumerate() {
                // A negative value (a lead time from a synthetic push time) draws no bar.
                @let height = if top > 0.0 { value.max(0.0) / top * HEIGHT } else { 0.0 };
                @let x = i as f64 * slot;
                g {
                    title { (label) ": " (describe(*value)) }
                    rect x=(x + slot * 0.1) y=(HEIGHT - height) width=(slot * 0.8) height=(height) fill="#1f3b57" {}
                    @if points.len() <= 31 && (points.len() <= 14 || i % 2 == 0) {
                        text x=(x + slot / 2.0) y=(HEIGHT + 13.0) text-anchor="middle" font-size="10" fill="#5a6472" { (label) }
                    }
                }
            }
        }
    }
}

/// A stacked bar per deployment of its time per step, and the legend of the steps' colours.
pub fn step_stack(title: &str, deployments: &[(String, Vec<StepTime>)]) -> Markup {
    let mut steps: Vec<&str> = Vec::new();
    for (_, times) in deployments {
        for t in times {
            if !steps.contains(&t.step.as_str()) {
                steps.push(&t.step);
            }
        }
    }
    let colour = |step: &str| {
        let i = steps.iter().position(|s| *s == step).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let longest = deployments
        .iter()
        .map(|(_, times)| times.iter().map(|t| t.seconds).sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let row = 16.0;
    let label = 140.0;
    let height = row * deployments.len() as f64;
    // Each step's segment of its deployment's bar: where it starts and how wide it is.
    let segments = |times: &[StepTime]| -> Vec<(f64, f64)> {
        let mut x = label;
        times
            .iter()
            .map(|t| {
                let width = t.seconds as f64 / longest * (WIDTH - label);
                x += width;
                (x - width, width)
            })
            .collect()
    };
    html! {
        svg class="chart" viewBox={ "0 0 " (WIDTH) " " (height.max(row)) } role="img" aria-label=(title) {
            title { (title) }
            @for (i, (name, times)) in deployments.iter().enumerate() {
                @let y = i as f64 * row;
                text x="0" y=(y + 12.0) font-size="10" fill="#5a6472" { (name) }
                @for (t, (x, width)) in times.iter().zip(segments(times)) {
                    g {
                        title { (name) " · " (t.step) ": " (human(t.seconds)) }
                        rect x=(x) y=(y + 2.0) width=(width) height=(row - 4.0) fill=(colour(&t.step)) {}
                    }
                }
            }
        }
        ul class="legend" {
            @for step in &steps {
                li { span class="swatch" style={ "background:" (colour(step)) } {} (step) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_say_each_value() {
        let svg = bars(
            "Deployments per day",
            &[("12-01".into(), 2.0), ("12-02".into(), 4.0)],
            |v| format!("{v} deployments"),
        )
        .into_string();
        assert!(svg.contains(r#"height="60""#), "half the top: {svg}");
        assert!(svg.contains(r#"height="120""#), "the top: {svg}");
        assert!(svg.contains("12-02: 4 deployments"), "{svg}");
        assert!(svg.contains(r#"aria-label="Deployments per day""#));
    }

    #[test]
    fn stacks_give_each_step_one_colour_and_a_legend() {
        let time = |step: &str, seconds| StepTime {
            step: step.into(),
            seconds,
        };
        let svg = step_stack(
            "Time per step",
            &[
                (
                    "shop-1".into(),
                    vec![time("migrate", 60), time("bake", 300)],
                ),
                ("shop-2".into(), vec![time("migrate", 120)]),
            ],
        )
        .into_string();
        assert_eq!(
            svg.matches(PALETTE[0]).count(),
            3,
            "migrate twice and its swatch"
        );
        assert!(svg.contains("shop-1 · bake: 5m 00s"), "{svg}");
        assert!(svg.contains("<li>"), "{svg}");
    }

    #[test]
    fn a_negative_value_draws_no_bar() {
        let svg = bars(
            "Lead time",
            &[("a".into(), -5.0), ("b".into(), 10.0)],
            |v| v.to_string(),
        )
        .into_string();
        assert!(!svg.contains("height=\"-"), "{svg}");
        assert!(svg.contains(r#"height="0""#), "{svg}");
    }

    #[test]
    fn an_empty_chart_draws_nothing_and_does_not_divide_by_zero() {
        let svg = bars("Lead time", &[], |v| v.to_string()).into_string();
        assert!(!svg.contains("<rect"), "{svg}");
        assert!(!svg.contains("NaN"), "{svg}");
        let svg = step_stack("Time per step", &[]).into_string();
        assert!(!svg.contains("NaN"), "{svg}");
    }
}
