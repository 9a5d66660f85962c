//! IAM wildcard matching: `*` matches any run of characters (also none), `?` exactly one.
//!
//! Pure. Used by `StringLike`, the ARN operators (per ARN part) and `Action` patterns. There is no
//! escape: IAM has none either, so a literal `*` in a pattern is always a wildcard.

/// Whether `text` matches `pattern`; compares characters (not bytes), case-sensitively.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Greedy matching with one backtrack point (the last `*` seen): linear in practice and never
    // exponential, unlike naive recursion on patterns such as `*a*a*a*b`.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn glob_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything at all", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "abbc", false),
            ("*.example.com", "web.example.com", true),
            ("*.example.com", "example.com", false),
            ("web-??", "web-01", true),
            ("web-??", "web-1", false),
            ("a*b*c", "a-x-b-y-c", true),
            ("a*b*c", "a-x-c-y-b", false),
            (
                "*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("Host", "host", false),
            ("h?st", "hôst", true),
            ("**", "x", true),
            ("x*", "x", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(
                matches(pattern, text),
                *want,
                "{pattern:?} against {text:?}"
            );
        }
    }
}
