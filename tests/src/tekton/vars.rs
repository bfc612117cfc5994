//! Tekton variables: finding `$(...)` in a string and telling what it names.

/// The text inside each `$(...)` of `text`. Every `$(` starts one, so the Tekton reference in a
/// shell's `$(cat $(results.r.path))` is found; the outer one just names nothing Tekton knows.
pub(super) fn expressions(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        rest = &rest[start + 2..];
        if let Some(end) = rest.find(')') {
            found.push(&rest[..end]);
        }
    }
    found
}

/// A Tekton variable, as far as the checks need it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reference<'a> {
    Param(&'a str),
    Workspace {
        name: &'a str,
        attr: &'a str,
    },
    Result {
        name: &'a str,
        attr: &'a str,
    },
    TaskResult {
        task: &'a str,
        result: &'a str,
    },
    /// `$(tasks.t.status)`, `$(tasks.t.reason)`.
    TaskState(&'a str),
}

/// `.name` (up to the next `.` or `[`) or `["name"]` / `['name']` at the start of `rest`, and
/// what follows it.
fn leading_name(rest: &str) -> Option<(&str, &str)> {
    if let Some(dotted) = rest.strip_prefix('.') {
        let end = dotted.find(['.', '[']).unwrap_or(dotted.len());
        return Some((&dotted[..end], &dotted[end..]));
    }
    let bracketed = rest.strip_prefix('[')?;
    let quote = bracketed
        .chars()
        .next()
        .filter(|q| *q == '"' || *q == '\'')?;
    let inner = &bracketed[1..];
    let end = inner.find(quote)?;
    Some((&inner[..end], inner[end + 1..].strip_prefix(']')?))
}

pub(super) fn reference(expr: &str) -> Option<Reference<'_>> {
    if let Some(rest) = expr.strip_prefix("params") {
        return leading_name(rest).map(|(name, _)| Reference::Param(name));
    }
    if let Some(rest) = expr.strip_prefix("workspaces") {
        let (name, after) = leading_name(rest)?;
        let attr = after.strip_prefix('.').unwrap_or(after);
        return Some(Reference::Workspace { name, attr });
    }
    if let Some(rest) = expr.strip_prefix("results") {
        let (name, after) = leading_name(rest)?;
        let attr = after.strip_prefix('.').unwrap_or(after);
        return Some(Reference::Result { name, attr });
    }
    let (task, after) = leading_name(expr.strip_prefix("tasks")?)?;
    match after.strip_prefix(".results") {
        Some(result) => {
            leading_name(result).map(|(result, _)| Reference::TaskResult { task, result })
        }
        // `$(tasks.status)` is the aggregate status of the DAG, not a task.
        None if after.is_empty() => None,
        None => Some(Reference::TaskState(task)),
    }
}

/// `text` with each `$(...)` that names a Tekton variable replaced by `value(expr)`, as the
/// controller substitutes them; `$(...)` that names nothing Tekton knows (a shell's `$(date)`)
/// stays. `Err` names a Tekton variable `value` cannot give.
pub(super) fn substitute(
    text: &str,
    value: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else {
            rest = &rest[start..];
            break;
        };
        let expr = &after[..end];
        match value(expr) {
            Some(v) => out.push_str(&v),
            None if reference(expr).is_some() => {
                return Err(format!("$({expr}) has no value in this run"))
            }
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_are_found_inside_shell_substitutions() {
        let text =
            "cat $(results.digest.path) > $(workspaces.out.path)/x; echo $(date +%s $(params.n))";
        let found = expressions(text);
        assert!(found.contains(&"results.digest.path"));
        assert!(found.contains(&"workspaces.out.path"));
        assert!(found.contains(&"params.n"));
    }

    #[test]
    fn substitution_replaces_tekton_variables_and_keeps_the_shells() {
        let value = |expr: &str| (expr == "params.n").then(|| "7".to_string());
        assert_eq!(
            substitute("n=$(params.n) at $(date)", value).unwrap(),
            "n=7 at $(date)"
        );
        let err = substitute("$(params.m)", value).unwrap_err();
        assert!(err.contains("$(params.m)"), "{err}");
    }

    #[test]
    fn references_are_classified() {
        assert_eq!(reference("params.a-b"), Some(Reference::Param("a-b")));
        assert_eq!(reference(r#"params["a.b"]"#), Some(Reference::Param("a.b")));
        assert_eq!(reference("params.list[*]"), Some(Reference::Param("list")));
        assert_eq!(reference("params.obj.key"), Some(Reference::Param("obj")));
        assert_eq!(
            reference("workspaces.w.bound"),
            Some(Reference::Workspace {
                name: "w",
                attr: "bound"
            })
        );
        assert_eq!(
            reference("tasks.pull.results.digest"),
            Some(Reference::TaskResult {
                task: "pull",
                result: "digest"
            })
        );
        assert_eq!(
            reference("tasks.pull.status"),
            Some(Reference::TaskState("pull"))
        );
        assert_eq!(reference("tasks.status"), None);
        assert_eq!(reference("context.taskRun.name"), None);
        assert_eq!(reference("date +%s"), None);
    }
}
