//! The kubelet's expansion of `$(VAR)` in a container's command, args and env values, with
//! `$$` for a literal `$`: a port of k8s.io/kubernetes
//! third_party/forked/golang/expansion/expand.go (`Expand`, `tryReadVariableName`), whose
//! quirks it keeps: an unknown `$(NAME)` stays as written, an unclosed `$(` is kept, and `$`
//! before any other character is kept with it. KServe writes its modelcar command with `$$$$`
//! for the shell's `$$` because of it (pkg/utils/storage.go).

/// `input` with each `$(NAME)` that `vars` knows replaced and each `$$` made `$`.
pub fn expand(input: &str, vars: impl Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        out.push_str(&vars(name).unwrap_or_else(|| format!("$({name})")));
                        close + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // `$` and the character after it, kept as they are.
                    let next = rest.chars().next().map_or(1, char::len_utf8);
                    out.push('$');
                    out.push_str(&rest[..next]);
                    next
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.push_str(&input[checkpoint.min(input.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn kserve_modelcar_command_gives_the_shell_its_own_pid() {
        let written = "ln -sf /proc/$$$$/root/models /mnt/models && sleep infinity";
        assert_eq!(
            expand(written, no_vars),
            "ln -sf /proc/$$/root/models /mnt/models && sleep infinity"
        );
        assert_eq!(
            expand("[ \"$$(ls -A /models)\" ]", no_vars),
            "[ \"$(ls -A /models)\" ]"
        );
    }

    #[test]
    fn known_vars_expand_and_the_rest_stays_as_written() {
        let vars = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand("$(A)/$(B)", vars), "x/$(B)");
        assert_eq!(expand("$(A", vars), "$(A");
        assert_eq!(expand("$HOME $", vars), "$HOME $");
        assert_eq!(expand("a$é", vars), "a$é");
    }
}
