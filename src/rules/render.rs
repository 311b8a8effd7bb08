//! The task -> controller dependency graph rendered for people: Mermaid (for
//! Markdown docs) and Graphviz DOT. Pure text; the binding only passes it on.

use super::model::Rules;
use crate::errors::{CoreError, CoreResult};

/// An output format of [`graph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// A Mermaid `flowchart LR`.
    Mermaid,
    /// A Graphviz `digraph`.
    Dot,
}

impl std::str::FromStr for GraphFormat {
    type Err = CoreError;

    /// `"mermaid"` or `"dot"`; anything else is a configuration error.
    fn from_str(s: &str) -> CoreResult<GraphFormat> {
        match s {
            "mermaid" => Ok(GraphFormat::Mermaid),
            "dot" => Ok(GraphFormat::Dot),
            other => Err(CoreError::Config(format!(
                "unknown graph format {other:?} (mermaid or dot)"
            ))),
        }
    }
}

/// A Mermaid node id: names may hold `-` and `.`, ids may not.
fn mermaid_id(s: &str) -> String {
    s.replace(['-', '.'], "_")
}

/// The graph: one node per controller, a solid edge from each task to each
/// controller it invalidates directly, a dashed edge for each cascade.
pub fn graph(rules: &Rules, fmt: GraphFormat) -> String {
    let dot = fmt == GraphFormat::Dot;
    let mut out = String::from(if dot {
        "digraph rules {\n  rankdir=LR;\n"
    } else {
        "flowchart LR\n"
    });
    for c in &rules.controllers {
        out.push_str(&if dot {
            format!("  \"c_{0}\" [label=\"{0}.nodb\", shape=box];\n", c.name)
        } else {
            format!("  c_{}[[\"{}\"]]\n", mermaid_id(&c.name), c.name)
        });
    }
    for t in &rules.tasks {
        for c in &t.invalidates {
            out.push_str(&if dot {
                format!("  \"t_{}\" -> \"c_{}\";\n", t.name, c)
            } else {
                format!(
                    "  t_{}(\"{}\") --> c_{}\n",
                    mermaid_id(&t.name),
                    t.name,
                    mermaid_id(c)
                )
            });
        }
        for n in &t.cascades {
            out.push_str(&if dot {
                format!("  \"t_{}\" -> \"t_{}\" [style=dashed];\n", t.name, n)
            } else {
                format!(
                    "  t_{}(\"{}\") -.-> t_{}(\"{}\")\n",
                    mermaid_id(&t.name),
                    t.name,
                    mermaid_id(n),
                    n
                )
            });
        }
    }
    if dot {
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::load;

    const RULES: &str = r#"{"version": 1,
      "controllers": {"climate": {"keys": ["{wd}/climate.nodb"]}, "wepp.post": {"keys": ["{wd}/wepppost.nodb"]}},
      "tasks": {"build_climate": {"invalidates": ["climate"], "cascades": ["run-wepp"]},
                "run-wepp": {"invalidates": ["wepp.post"]}}}"#;

    #[test]
    fn formats_parse() {
        assert_eq!(
            "mermaid".parse::<GraphFormat>().ok(),
            Some(GraphFormat::Mermaid)
        );
        assert_eq!("dot".parse::<GraphFormat>().ok(), Some(GraphFormat::Dot));
        let err = "svg".parse::<GraphFormat>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid configuration: unknown graph format \"svg\" (mermaid or dot)")
        );
    }

    #[test]
    fn mermaid() {
        let r = load::from_str(RULES, "t").unwrap();
        assert_eq!(
            graph(&r, GraphFormat::Mermaid),
            "flowchart LR\n\
             \x20 c_climate[[\"climate\"]]\n\
             \x20 c_wepp_post[[\"wepp.post\"]]\n\
             \x20 t_build_climate(\"build_climate\") --> c_climate\n\
             \x20 t_build_climate(\"build_climate\") -.-> t_run_wepp(\"run-wepp\")\n\
             \x20 t_run_wepp(\"run-wepp\") --> c_wepp_post\n"
        );
    }

    #[test]
    fn dot() {
        let r = load::from_str(RULES, "t").unwrap();
        assert_eq!(
            graph(&r, GraphFormat::Dot),
            "digraph rules {\n  rankdir=LR;\n\
             \x20 \"c_climate\" [label=\"climate.nodb\", shape=box];\n\
             \x20 \"c_wepp.post\" [label=\"wepp.post.nodb\", shape=box];\n\
             \x20 \"t_build_climate\" -> \"c_climate\";\n\
             \x20 \"t_build_climate\" -> \"t_run-wepp\" [style=dashed];\n\
             \x20 \"t_run-wepp\" -> \"c_wepp.post\";\n\
             }\n"
        );
    }

    #[test]
    fn the_builtin_graph_has_every_task_and_controller() {
        let r = load::from_str(crate::rules::BUILTIN_TEXT, crate::rules::BUILTIN_SOURCE).unwrap();
        let dot = graph(&r, GraphFormat::Dot);
        for c in &r.controllers {
            assert!(
                dot.contains(&format!("\"c_{}\" [label=", c.name)),
                "{}",
                c.name
            );
        }
        for t in &r.tasks {
            for c in &t.invalidates {
                assert!(dot.contains(&format!("\"t_{}\" -> \"c_{c}\";", t.name)));
            }
        }
    }
}
