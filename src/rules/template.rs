//! Cache key templates: `{wd}`, `{run_id}`, `{controller}`, `{{`/`}}` escapes.

/// One parsed piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Wd,
    RunId,
    Controller,
}

/// A parsed template; rendering inserts values literally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub text: String,
    segments: Vec<Segment>,
}

/// The values a template is rendered with, for one run.
#[derive(Debug, Clone)]
pub struct RunVars<'a> {
    /// Absolute, normalised run folder without a trailing slash.
    pub wd: &'a str,
    pub run_id: &'a str,
}

/// The owned values of [`RunVars`] for one run folder, built once.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub wd: String,
    pub run_id: String,
}

impl RunFolder {
    /// The values for the run folder `wd` (made absolute and normalised).
    pub fn of(wd: &str) -> RunFolder {
        RunFolder {
            wd: crate::paths::abs_wd(wd),
            run_id: crate::paths::run_id_of(wd),
        }
    }

    /// The placeholders themselves: keys shown as templates.
    pub fn placeholders() -> RunFolder {
        RunFolder {
            wd: "{wd}".to_string(),
            run_id: "{run_id}".to_string(),
        }
    }

    /// The values, borrowed for rendering.
    pub fn vars(&self) -> RunVars<'_> {
        RunVars {
            wd: &self.wd,
            run_id: &self.run_id,
        }
    }
}

/// Placeholder names understood in templates.
pub const PLACEHOLDERS: [&str; 3] = ["wd", "run_id", "controller"];

impl Template {
    /// Parse `text`; the error says what is wrong, for a person.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("unclosed '{{' at offset {i} in {text:?}"));
                    };
                    let name = &rest[..end];
                    let seg = match name {
                        "wd" => Segment::Wd,
                        "run_id" => Segment::RunId,
                        "controller" => Segment::Controller,
                        _ => {
                            return Err(format!(
                                "unknown placeholder {{{name}}} (known: {{wd}}, {{run_id}}, {{controller}}; write {{{{ for a literal brace)"
                            ))
                        }
                    };
                    if !lit.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut lit)));
                    }
                    segments.push(seg);
                    for _ in 0..=name.chars().count() {
                        chars.next();
                    }
                }
                '}' => return Err(format!("unmatched '}}' at offset {i} in {text:?}")),
                _ => lit.push(c),
            }
        }
        if !lit.is_empty() {
            segments.push(Segment::Literal(lit));
        }
        Ok(Template {
            text: text.to_string(),
            segments,
        })
    }

    /// True when the template names the run (`{wd}` or `{run_id}`).
    pub fn is_run_scoped(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Wd | Segment::RunId))
    }

    /// True when a glob metacharacter (`*`, `?`, `[`) directly follows `{wd}`
    /// or `{run_id}`: as a pattern it would also match every run whose folder
    /// or id starts with this one's (`/runs/ab*` reaches `/runs/abc/...`).
    pub fn globs_past_run(&self) -> bool {
        self.segments.windows(2).any(|w| match (&w[0], &w[1]) {
            (Segment::Wd | Segment::RunId, Segment::Literal(l)) => l.starts_with(['*', '?', '[']),
            _ => false,
        })
    }

    /// Render with values inserted literally.
    pub fn render(&self, vars: &RunVars<'_>, controller: &str) -> String {
        self.render_with(vars, controller, false)
    }

    /// Render as a `SCAN MATCH` pattern: literal parts are the template's own
    /// glob, inserted values are glob-escaped.
    pub fn render_pattern(&self, vars: &RunVars<'_>, controller: &str) -> String {
        self.render_with(vars, controller, true)
    }

    fn render_with(&self, vars: &RunVars<'_>, controller: &str, escape: bool) -> String {
        let mut out = String::with_capacity(self.text.len() + vars.wd.len());
        for seg in &self.segments {
            let value = match seg {
                Segment::Literal(l) => {
                    out.push_str(l);
                    continue;
                }
                Segment::Wd => vars.wd,
                Segment::RunId => vars.run_id,
                Segment::Controller => controller,
            };
            if escape {
                out.push_str(&glob_escape(value));
            } else {
                out.push_str(value);
            }
        }
        out
    }
}

/// Escape Redis glob metacharacters (`* ? [ ] \`).
pub fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: RunVars<'static> = RunVars {
        wd: "/runs/a*b/{x}",
        run_id: "{x}",
    };

    #[test]
    fn renders_values_literally() {
        let t = Template::parse("{wd}/climate.nodb").unwrap();
        assert_eq!(t.render(&VARS, "climate"), "/runs/a*b/{x}/climate.nodb");
        let t = Template::parse("nodb:{{{run_id}}}:{controller}").unwrap();
        assert_eq!(t.render(&VARS, "wepp"), "nodb:{{x}}:wepp");
    }

    #[test]
    fn pattern_escapes_values_not_template() {
        let t = Template::parse("{wd}/omni/*.nodb").unwrap();
        assert_eq!(
            t.render_pattern(&VARS, "omni"),
            "/runs/a\\*b/{x}/omni/*.nodb"
        );
    }

    #[test]
    fn rejects_unknown_and_unbalanced() {
        assert!(Template::parse("{wdd}/x")
            .unwrap_err()
            .contains("unknown placeholder {wdd}"));
        assert!(Template::parse("{wd").unwrap_err().contains("unclosed"));
        assert!(Template::parse("x}").unwrap_err().contains("unmatched"));
    }

    #[test]
    fn run_scope() {
        assert!(Template::parse("{run_id}:x").unwrap().is_run_scoped());
        assert!(!Template::parse("{controller}").unwrap().is_run_scoped());
    }

    #[test]
    fn wildcard_right_after_the_run_reaches_other_runs() {
        for t in ["{wd}*", "{wd}?/x", "x:{run_id}[0-9]", "{wd}/a/{run_id}*"] {
            assert!(Template::parse(t).unwrap().globs_past_run(), "{t}");
        }
        for t in [
            "{wd}/*",
            "rid:{run_id}:*",
            "{wd}",
            "*:{run_id}",
            "{controller}*",
        ] {
            assert!(!Template::parse(t).unwrap().globs_past_run(), "{t}");
        }
    }
}
