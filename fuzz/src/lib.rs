//! Helpers shared by the fuzz targets: how an error is printed, and text normalisation for the
//! secret-leak properties.

use std::error::Error;

/// What a user could see of an error: its `Display` chain as the CLI prints it, then its `Debug`.
pub fn error_text(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out.push('\n');
    out.push_str(&format!("{e:?}"));
    out
}

/// `text` percent-decoded leniently (a `%XX` with two hex digits becomes its byte, anything else
/// stays) and lower-cased, so a secret is found however it was encoded or cased.
pub fn normalise(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|_| b[i] == b'%')
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_lowercase()
}

/// Number of (possibly overlapping) occurrences of `needle` in `hay`.
pub fn count(hay: &str, needle: &str) -> usize {
    hay.match_indices(needle).count()
}

/// The DER elements of a concatenation (each a whole TLV by its own length); what is left over when
/// a header does not parse becomes the last element, so every byte reaches the parser.
pub fn split_der(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = der_len(data)
            .filter(|&n| n <= data.len())
            .unwrap_or(data.len());
        out.push(&data[..len]);
        data = &data[len..];
    }
    out
}

/// Total length (header and content) of the DER element at the start of `d`.
fn der_len(d: &[u8]) -> Option<usize> {
    let first = *d.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = d
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Some(2 + n + len)
}

/// A structure-aware mutation for DER inputs (bare, concatenated, or base64 inside a PEM block), for
/// `fuzz_mutator!`: half the time libFuzzer's own mutation, otherwise one change to one element of
/// the DER tree (its content replaced, shrunk, grown or emptied, an INTEGER set to an edge value, the
/// element dropped or repeated, its tag changed) with every enclosing length re-encoded. Byte-level
/// mutation alone almost never changes a field's length consistently through four enclosing
/// SEQUENCEs, which is what reaching, say, an scrypt `N` of 0 takes.
pub fn der_mutate(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> usize {
    let mut rng = Rng(u64::from(seed) | 1 << 32);
    if rng.below(2) == 0 {
        return libfuzzer_sys::fuzzer_mutate(data, size, max_size);
    }
    let input = &data[..size];
    let out = match pem_body(input) {
        Some((start, end)) => mutate_pem(input, start, end, &mut rng),
        None => mutate_tree(input, &mut rng),
    };
    match out {
        Some(out) if out.len() <= max_size => {
            data[..out.len()].copy_from_slice(&out);
            out.len()
        }
        _ => libfuzzer_sys::fuzzer_mutate(data, size, max_size),
    }
}

/// xorshift64*: the mutation must depend only on libFuzzer's seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One DER element; contents that parse completely as DER (SEQUENCEs, but also the OCTET STRINGs
/// that wrap a PKCS#8 key or PKCS#12 bags) are kept as children.
#[derive(Clone)]
enum Node {
    Leaf(u8, Vec<u8>),
    Tree(u8, Vec<Node>),
}

fn parse_all(mut d: &[u8], depth: usize, budget: &mut usize) -> Option<Vec<Node>> {
    let mut out = Vec::new();
    while !d.is_empty() {
        *budget = budget.checked_sub(1)?;
        let tag = d[0];
        // Multi-byte tags do not occur in these formats.
        if tag & 0x1f == 0x1f {
            return None;
        }
        let len = der_len(d)?;
        if len > d.len() {
            return None;
        }
        let header = len - content_len(d)?;
        let content = &d[header..len];
        let children = if depth < 24 && !content.is_empty() {
            parse_all(content, depth + 1, budget)
        } else {
            None
        };
        out.push(match children {
            Some(c) => Node::Tree(tag, c),
            None => Node::Leaf(tag, content.to_vec()),
        });
        d = &d[len..];
    }
    Some(out)
}

fn content_len(d: &[u8]) -> Option<usize> {
    let first = *d.get(1)?;
    if first < 0x80 {
        return Some(usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    Some(
        d.get(2..2 + n)?
            .iter()
            .fold(0, |a, &b| (a << 8) | usize::from(b)),
    )
}

fn encode(nodes: &[Node], out: &mut Vec<u8>) {
    for n in nodes {
        let (tag, content) = match n {
            Node::Leaf(t, c) => (*t, c.clone()),
            Node::Tree(t, children) => {
                let mut c = Vec::new();
                encode(children, &mut c);
                (*t, c)
            }
        };
        out.push(tag);
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend(content);
    }
}

fn count_nodes(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|n| match n {
            Node::Leaf(..) => 1,
            Node::Tree(_, c) => 1 + count_nodes(c),
        })
        .sum()
}

/// Applies one change to the `k`-th node (pre-order); returns false when `k` is beyond the tree.
fn mutate_nth(nodes: &mut Vec<Node>, k: &mut usize, rng: &mut Rng) -> bool {
    for i in 0..nodes.len() {
        if *k == 0 {
            mutate_node(nodes, i, rng);
            return true;
        }
        *k -= 1;
        if let Node::Tree(_, children) = &mut nodes[i]
            && mutate_nth(children, k, rng)
        {
            return true;
        }
    }
    false
}

const EDGE_VALUES: &[&[u8]] = &[
    &[0x00],
    &[0x01],
    &[0x02],
    &[0xff],
    &[0x7f],
    &[0x00, 0x80],
    &[0x80],
    &[0x7f, 0xff, 0xff, 0xff],
    &[0x00, 0xff, 0xff, 0xff, 0xff],
    &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
    &[],
];

const TAGS: &[u8] = &[
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x17, 0x18, 0x30, 0x31, 0xa0, 0xa1, 0xa2, 0xa3,
    0x80, 0x81,
];

fn mutate_node(nodes: &mut Vec<Node>, i: usize, rng: &mut Rng) {
    match rng.below(7) {
        0 => {
            let v = EDGE_VALUES[rng.below(EDGE_VALUES.len())].to_vec();
            let tag = match &nodes[i] {
                Node::Leaf(t, _) | Node::Tree(t, _) => *t,
            };
            nodes[i] = Node::Leaf(tag, v);
        }
        1 => {
            nodes.remove(i);
        }
        2 => nodes.insert(i, nodes[i].clone()),
        3 => match &mut nodes[i] {
            Node::Leaf(t, _) | Node::Tree(t, _) => *t = TAGS[rng.below(TAGS.len())],
        },
        _ => {
            // New content: libFuzzer's mutation of the old one, with room to grow.
            let (tag, mut content) = match &nodes[i] {
                Node::Leaf(t, c) => (*t, c.clone()),
                Node::Tree(t, children) => {
                    let mut c = Vec::new();
                    encode(children, &mut c);
                    (*t, c)
                }
            };
            let size = content.len();
            content.resize(size * 2 + 16, 0);
            let max = content.len();
            let n = libfuzzer_sys::fuzzer_mutate(&mut content, size, max);
            content.truncate(n);
            nodes[i] = Node::Leaf(tag, content);
        }
    }
}

fn mutate_tree(der: &[u8], rng: &mut Rng) -> Option<Vec<u8>> {
    let mut budget = 10_000;
    let mut nodes = parse_all(der, 0, &mut budget)?;
    let total = count_nodes(&nodes);
    if total == 0 {
        return None;
    }
    let mut k = rng.below(total);
    mutate_nth(&mut nodes, &mut k, rng);
    let mut out = Vec::with_capacity(der.len() + 64);
    encode(&nodes, &mut out);
    Some(out)
}

/// Byte range of the base64 body of the first PEM block.
fn pem_body(d: &[u8]) -> Option<(usize, usize)> {
    let begin = d.windows(11).position(|w| w == b"-----BEGIN ")?;
    let start = begin + d[begin..].iter().position(|&b| b == b'\n')? + 1;
    let end = start + d[start..].windows(9).position(|w| w == b"-----END ")?;
    Some((start, end))
}

fn mutate_pem(d: &[u8], start: usize, end: usize, rng: &mut Rng) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: Vec<u8> = d[start..end]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    // Blocks with headers (legacy encryption) are left to libFuzzer's mutation.
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let der = mutate_tree(&der, rng)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = d[..start].to_vec();
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(&d[end..]);
    Some(out)
}
