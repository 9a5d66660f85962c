//! The `~/.aws/config` profile that `install-cert` prints (and with `--aws-config` writes).
//!
//! Pure; no I/O (the caller finds the program's path and the device details). `credential_process` is run through `sh -c` by some SDKs (Go, Rust) and split with
//! `shlex` by others (botocore), so every argument that is not plainly safe is single-quoted: a
//! `pkcs11:` URI's `;` would otherwise end the command. Secrets are never printed: a URI's `pin-value`
//! is dropped and passwords given as values are replaced by a note to use a file.

/// What goes into the printed profile.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// The `[profile NAME]`.
    pub name: String,
    /// The program SDKs run: this binary's absolute path (SDKs run `credential_process` with their
    /// own `PATH`, which need not contain it).
    pub program: String,
    /// `--certificate` (absolute path or `pkcs11:` URI).
    pub certificate: String,
    /// `--private-key` (absolute path, `pkcs11:` URI or `handle:`).
    pub private_key: String,
    /// `--intermediates`, when the chain is not in the certificate file.
    pub intermediates: Option<String>,
    /// `--trust-anchor-arn` (placeholder when `None`).
    pub trust_anchor_arn: Option<String>,
    /// `--profile-arn` (placeholder when `None`).
    pub profile_arn: Option<String>,
    /// `--role-arn` (placeholder when `None`).
    pub role_arn: Option<String>,
    /// `--endpoint`, when not the region's default.
    pub endpoint: Option<String>,
    /// Further device flags and their values (`--pkcs11-lib PATH`, `--tpm-tcti TCTI`, …).
    pub device_flags: Vec<(String, Option<String>)>,
    /// Comment lines to print above the profile.
    pub notes: Vec<String>,
}

/// Quotes `arg` for `sh` and `shlex` when it holds anything but safe characters.
pub fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A `pkcs11:` URI without its `pin-value` attribute.
pub fn redact_uri(uri: &str) -> String {
    let body = uri.strip_prefix("pkcs11:").unwrap_or(uri);
    let (path, query) = match body.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (body, None),
    };
    let keep_path: Vec<&str> = path.split(';').filter(|a| !a.is_empty()).collect();
    let keep_query: Vec<&str> = query
        .map(|q| {
            q.split('&')
                .filter(|a| !a.is_empty() && !a.starts_with("pin-value="))
                .collect()
        })
        .unwrap_or_default();
    let mut out = format!("pkcs11:{}", keep_path.join(";"));
    if !keep_query.is_empty() {
        out.push('?');
        out.push_str(&keep_query.join("&"));
    }
    out
}

impl Profile {
    /// The `credential_process` value: the command line SDKs run.
    pub fn command(&self) -> String {
        let arn = |v: &Option<String>, placeholder: &str| {
            v.as_deref()
                .map(shell_quote)
                .unwrap_or_else(|| placeholder.to_string())
        };
        let mut cmd = vec![
            shell_quote(&self.program),
            "credential-process".to_string(),
            "--certificate".to_string(),
            shell_quote(&self.certificate),
            "--private-key".to_string(),
            shell_quote(&self.private_key),
        ];
        if let Some(i) = &self.intermediates {
            cmd.push("--intermediates".into());
            cmd.push(shell_quote(i));
        }
        for (flag, value) in &self.device_flags {
            cmd.push(flag.clone());
            if let Some(v) = value {
                cmd.push(shell_quote(v));
            }
        }
        cmd.extend([
            "--trust-anchor-arn".into(),
            arn(&self.trust_anchor_arn, "<TRUST_ANCHOR_ARN>"),
            "--profile-arn".into(),
            arn(&self.profile_arn, "<PROFILE_ARN>"),
            "--role-arn".into(),
            arn(&self.role_arn, "<ROLE_ARN>"),
        ]);
        if let Some(e) = &self.endpoint {
            cmd.push("--endpoint".into());
            cmd.push(shell_quote(e));
        }
        cmd.join(" ")
    }

    /// True when an ARN is still a placeholder.
    pub fn has_placeholders(&self) -> bool {
        self.trust_anchor_arn.is_none() || self.profile_arn.is_none() || self.role_arn.is_none()
    }

    /// The text to show: comment lines, then the section. `written_to` names the config file the
    /// profile was written to, if it was.
    pub fn render(&self, written_to: Option<&str>) -> String {
        let mut out = match written_to {
            Some(f) => format!("# Written to {f}:\n"),
            None => String::from("# Add to ~/.aws/config:\n"),
        };
        for n in &self.notes {
            out.push_str(&format!("# {n}\n"));
        }
        if self.has_placeholders() {
            out.push_str("# Replace the <…> placeholders with your Roles Anywhere ARNs.\n");
        }
        out.push_str(&format!(
            "{}\ncredential_process = {}\n",
            super::awsconfig::section_header(&self.name),
            self.command()
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_paths_alone_and_quotes_uris() {
        assert_eq!(shell_quote("/etc/ra/k.cert.pem"), "/etc/ra/k.cert.pem");
        assert_eq!(
            shell_quote("pkcs11:token=ra;object=k"),
            "'pkcs11:token=ra;object=k'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn pin_value_never_reaches_the_profile() {
        assert_eq!(
            redact_uri("pkcs11:token=ra;id=%01;type=private?pin-value=1234&module-path=/m.so"),
            "pkcs11:token=ra;id=%01;type=private?module-path=/m.so"
        );
        assert_eq!(
            redact_uri("pkcs11:token=ra;type=cert?pin-value=1234"),
            "pkcs11:token=ra;type=cert"
        );
    }

    #[test]
    fn profile_has_placeholders_or_given_arns() {
        let mut p = Profile {
            name: "ra".into(),
            program: "/opt/ra/bin/rolesanywhere-agent".into(),
            certificate: "/k/c.pem".into(),
            private_key: "pkcs11:token=ra;object=k".into(),
            device_flags: vec![(
                "--pkcs11-lib".into(),
                Some("/usr/lib/softhsm/libsofthsm2.so".into()),
            )],
            ..Profile::default()
        };
        let t = p.render(None);
        assert!(t.contains("[profile ra]\n"), "{t}");
        assert!(t.contains(
            "credential_process = /opt/ra/bin/rolesanywhere-agent credential-process --certificate /k/c.pem \
             --private-key 'pkcs11:token=ra;object=k' --pkcs11-lib /usr/lib/softhsm/libsofthsm2.so \
             --trust-anchor-arn <TRUST_ANCHOR_ARN> --profile-arn <PROFILE_ARN> --role-arn <ROLE_ARN>\n"
        ), "{t}");
        assert!(t.contains("placeholders"), "{t}");
        p.trust_anchor_arn =
            Some("arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/a".into());
        p.profile_arn = Some("arn:aws:rolesanywhere:eu-west-1:123456789012:profile/p".into());
        p.role_arn = Some("arn:aws:iam::123456789012:role/r".into());
        let t = p.render(None);
        assert!(!t.contains('<') && !t.contains("placeholders"), "{t}");
        assert!(
            t.contains("--role-arn arn:aws:iam::123456789012:role/r\n"),
            "{t}"
        );
    }
}
