//! Key-file policies: checking which commands a key's policy uses, and running them in a session.
//!
//! Owns: the supported policy commands (PolicyPCR, PolicyAuthValue, PolicyPassword) and their
//! parameter parsing. PolicyPassword is run as PolicyAuthValue: both extend the policy digest with
//! `TPM_CC_PolicyAuthValue`, so the TPM accepts either, and PolicyAuthValue keeps the auth value
//! inside the session HMAC instead of sending it in the clear. Must not run commands the key file
//! does not list.

use super::error::Error;
use super::keyfile::PolicyCommand;
use super::tcti::Tpm;
use tss_esapi::{
    interface_types::session_handles::PolicySession,
    structures::{Digest, PcrSelectionList},
    tss2_esys::{TPML_PCR_SELECTION, TPMS_PCR_SELECTION},
};

/// TPM_CC_PolicyPCR.
pub(crate) const CC_POLICY_PCR: u32 = 0x17f;
/// TPM_CC_PolicyAuthValue.
pub(crate) const CC_POLICY_AUTH_VALUE: u32 = 0x16b;
/// TPM_CC_PolicyPassword.
pub(crate) const CC_POLICY_PASSWORD: u32 = 0x18c;

/// A policy step ready to send.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// TPM2_PolicyPCR with the expected PCR digest and the selection.
    Pcr {
        /// Digest of the selected PCR values the key was bound to.
        digest: Vec<u8>,
        /// The marshalled selection, kept raw for re-parsing on every run.
        selection: Vec<SelectionEntry>,
    },
    /// TPM2_PolicyAuthValue (also used for PolicyPassword, see the module doc).
    AuthValue,
}

/// One `TPMS_PCR_SELECTION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SelectionEntry {
    hash: u16,
    select: Vec<u8>,
}

/// Parses a key file's policy into steps; unknown commands are refused by name.
pub(crate) fn parse(policy: &[PolicyCommand]) -> Result<Vec<Step>, String> {
    policy
        .iter()
        .map(|p| match p.code {
            CC_POLICY_PCR => parse_pcr(&p.params),
            CC_POLICY_AUTH_VALUE | CC_POLICY_PASSWORD => {
                if p.params.is_empty() {
                    Ok(Step::AuthValue)
                } else {
                    Err("PolicyAuthValue/PolicyPassword entry has unexpected parameters".into())
                }
            }
            other => Err(format!(
                "its policy uses TPM_CC {other:#x}; supported are PolicyPCR (0x17f), \
                 PolicyAuthValue (0x16b) and PolicyPassword (0x18c)"
            )),
        })
        .collect()
}

/// True when the steps make the TPM check the key's auth value.
pub(crate) fn uses_auth_value(steps: &[Step]) -> bool {
    steps.iter().any(|s| matches!(s, Step::AuthValue))
}

/// `TPM2B_DIGEST pcrDigest ‖ TPML_PCR_SELECTION pcrs`, the parameter area of TPM2_PolicyPCR.
fn parse_pcr(b: &[u8]) -> Result<Step, String> {
    let bad = || "PolicyPCR parameters are malformed".to_string();
    let take = |b: &mut &[u8], n: usize| -> Result<Vec<u8>, String> {
        if b.len() < n {
            return Err(bad());
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h.to_vec())
    };
    let mut b = b;
    let dlen = take(&mut b, 2)?;
    let digest = take(&mut b, usize::from(u16::from_be_bytes([dlen[0], dlen[1]])))?;
    let count = take(&mut b, 4)?;
    let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]) as usize;
    if count == 0 || count > 16 {
        return Err(bad());
    }
    let mut selection = Vec::with_capacity(count);
    for _ in 0..count {
        let h = take(&mut b, 2)?;
        let n = take(&mut b, 1)?[0] as usize;
        if n > 4 {
            return Err("PolicyPCR selects more than 32 PCRs".into());
        }
        selection.push(SelectionEntry {
            hash: u16::from_be_bytes([h[0], h[1]]),
            select: take(&mut b, n)?,
        });
    }
    if !b.is_empty() {
        return Err(bad());
    }
    Ok(Step::Pcr { digest, selection })
}

fn selection_list(entries: &[SelectionEntry]) -> tss_esapi::Result<PcrSelectionList> {
    let mut tpml = TPML_PCR_SELECTION {
        count: entries.len() as u32,
        pcrSelections: [TPMS_PCR_SELECTION {
            hash: 0,
            sizeofSelect: 0,
            pcrSelect: [0; 4],
        }; 16],
    };
    for (slot, e) in tpml.pcrSelections.iter_mut().zip(entries) {
        slot.hash = e.hash;
        slot.sizeofSelect = e.select.len() as u8;
        slot.pcrSelect[..e.select.len()].copy_from_slice(&e.select);
    }
    PcrSelectionList::try_from(tpml)
}

/// Runs `steps` in `session`. On failure the session is restarted so the next attempt starts from an
/// empty policy digest; the failure is returned (never retried here).
pub(crate) fn run(
    tpm: &mut Tpm,
    session: PolicySession,
    steps: &[Step],
    key: &str,
) -> Result<(), Error> {
    let result = steps.iter().try_for_each(|step| match step {
        Step::Pcr { digest, selection } => {
            let (digest, selection) = (digest.clone(), selection.clone());
            tpm.run("TPM2_PolicyPCR", key, move |c| {
                let d = Digest::try_from(digest.as_slice())?;
                let sel = selection_list(&selection)?;
                c.execute_without_session(|c| c.policy_pcr(session, d, sel))
            })
        }
        Step::AuthValue => tpm.run("TPM2_PolicyAuthValue", key, move |c| {
            c.execute_without_session(|c| c.policy_auth_value(session))
        }),
    });
    if result.is_err() {
        // The failure is what the user needs to see; a restart failure adds nothing to it.
        let _ = tpm.run("TPM2_PolicyRestart", key, move |c| {
            c.execute_without_session(|c| c.policy_restart(session))
        });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcr_params() -> Vec<u8> {
        // digest of 32 bytes, one selection: SHA-256, 3 bytes, PCR 16.
        let mut p = vec![0x00, 0x20];
        p.extend([0xab; 32]);
        p.extend([0, 0, 0, 1, 0x00, 0x0b, 3, 0x00, 0x00, 0x01]);
        p
    }

    #[test]
    fn parses_policy_pcr_and_builds_the_selection() {
        let steps = parse(&[PolicyCommand {
            code: CC_POLICY_PCR,
            params: pcr_params(),
        }])
        .unwrap();
        let Step::Pcr { digest, selection } = &steps[0] else {
            panic!("{steps:?}")
        };
        assert_eq!(digest, &vec![0xab; 32]);
        assert_eq!(selection[0].select, vec![0, 0, 1]);
        let list = selection_list(selection).unwrap();
        assert_eq!(list.len(), 1);
        assert!(!uses_auth_value(&steps));
    }

    #[test]
    fn policy_password_runs_as_auth_value() {
        let steps = parse(&[PolicyCommand {
            code: CC_POLICY_PASSWORD,
            params: vec![],
        }])
        .unwrap();
        assert!(matches!(steps[..], [Step::AuthValue]));
        assert!(uses_auth_value(&steps));
    }

    #[test]
    fn unsupported_or_malformed_policies_are_refused() {
        let e = parse(&[PolicyCommand {
            code: 0x16a, // PolicySecret
            params: vec![],
        }])
        .unwrap_err();
        assert!(e.contains("0x16a"), "{e}");
        let mut p = pcr_params();
        for n in 0..p.len() {
            assert!(parse_pcr(&p[..n]).is_err(), "prefix {n}");
        }
        p.push(0);
        assert!(parse_pcr(&p).is_err());
    }
}
