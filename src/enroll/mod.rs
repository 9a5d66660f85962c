//! Air-gapped enrollment: generate a key on the device, sign a CSR with it, install the certificate.
//!
//! STUB: filled by the enrollment work (issue 5). No enroll operation ever opens a network connection.
