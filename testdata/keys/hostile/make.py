#!/usr/bin/env python3
"""Makes the hostile key-file fixtures of issue 14 (items 8 and 10). Run from anywhere; writes
beside itself; needs openssl and Python's `cryptography` package.

Every fixture starts from a key openssl made (the fixtures one directory up, or keys this script
has openssl make) and changes only DER parameters, so each file is what a real writer produces but
for the one field under test:

- pbes2-*.pem: encrypted PKCS#8 whose PBES2 parameters would panic a crate (scrypt N=0, a 3DES IV
  shorter than 8 bytes) or are out of range (N=1 or not a power of two, r=0, p=0, a key length that
  is huge or does not match the cipher, an empty or over-long salt, an IV of the wrong length).
- p12-12-bags-10m.p12: a valid PKCS#12 file (no MAC) of twelve items at 10,000,000 PBKDF2
  iterations each: eleven encryptedData contents (the same one, holding the key's certificate) and
  a shrouded key bag. 120,000,000 iterations for a 4 KB file.
- p12-hidden-bag.p12: a PKCS#12 file whose one encryptedData (cheap: 1 iteration) holds a shrouded
  key bag with pbeWithSHAAnd3-KeyTripleDES-CBC at 10,000,000 iterations (key and IV derivations:
  30,000,000): the bag is only seen once the outer content is decrypted.

The password of every file is the one in ../password.txt.
"""

import base64
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = os.path.dirname(HERE)
PASSWORD = open(os.path.join(KEYS, "password.txt")).read().splitlines()[0]


# --- a minimal DER tree: (tag, bytes) for primitives, (tag, [children]) for constructed values ---

def parse(der):
    """Parses one TLV (and asserts nothing follows) into the tree form."""
    node, rest = parse_one(der)
    assert not rest, "trailing data"
    return node


def parse_one(der):
    tag = der[0]
    length = der[1]
    header = 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(der[2:2 + n], "big")
        header = 2 + n
    value = der[header:header + length]
    rest = der[header + length:]
    if tag & 0x20:  # constructed
        children = []
        while value:
            child, value = parse_one(value)
            children.append(child)
        return [tag, children], rest
    return [tag, value], rest


def encode(node):
    tag, value = node
    if isinstance(value, list):
        value = b"".join(encode(c) for c in value)
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + value


def integer(v):
    raw = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return [0x02, raw]


def octets(b):
    return [0x04, b]


def oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.insert(0, 0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(chunk)
    return [0x06, out]


def seq(*children):
    return [0x30, list(children)]


def explicit0(*children):
    return [0xA0, list(children)]


def pem_decode(path):
    lines = open(path).read().splitlines()
    body = "".join(l for l in lines if l and not l.startswith("-----"))
    return base64.b64decode(body)


def pem_encode(label, der):
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True)


# --- encrypted PKCS#8 with edited PBES2 parameters ---

def edited_pkcs8(source, name, edit):
    """Writes NAME: the EncryptedPrivateKeyInfo in SOURCE with EDIT applied to its tree.
    Tree paths: epki[1][0] = algorithm; algorithm[1][1] = PBES2-params;
    PBES2-params[1][0] = KDF AlgorithmIdentifier, PBES2-params[1][1] = cipher AlgorithmIdentifier."""
    tree = parse(pem_decode(source))
    pbes2 = tree[1][0][1][1]
    kdf_params = pbes2[1][0][1][1]
    cipher = pbes2[1][1]
    edit(kdf_params[1], cipher[1])
    with open(os.path.join(HERE, name), "w") as f:
        f.write(pem_encode("ENCRYPTED PRIVATE KEY", encode(tree)))


def set_at(i, node):
    def edit(kdf, _cipher):
        kdf[i] = node
    return edit


def make_pkcs8(tmp):
    scrypt = os.path.join(KEYS, "ec-p256.enc-scrypt.pem")  # salt, N=2^14, r=8, p=1; AES-256-CBC
    pbkdf2 = os.path.join(KEYS, "ec-p384.enc-aes128-sha1.pem")  # salt, 2048 iterations; AES-128-CBC
    des3 = os.path.join(tmp, "des3.pem")
    openssl("pkcs8", "-topk8", "-v2", "des3", "-in", os.path.join(KEYS, "ec-p256.pkcs8.pem"),
            "-passout", "pass:" + PASSWORD, "-out", des3)

    edited_pkcs8(scrypt, "pbes2-scrypt-n0.pem", set_at(1, integer(0)))
    edited_pkcs8(scrypt, "pbes2-scrypt-n1.pem", set_at(1, integer(1)))
    edited_pkcs8(scrypt, "pbes2-scrypt-n3.pem", set_at(1, integer(3)))
    edited_pkcs8(scrypt, "pbes2-scrypt-r0.pem", set_at(2, integer(0)))
    edited_pkcs8(scrypt, "pbes2-scrypt-p0.pem", set_at(3, integer(0)))
    edited_pkcs8(scrypt, "pbes2-scrypt-r70000.pem", set_at(2, integer(70000)))
    edited_pkcs8(scrypt, "pbes2-scrypt-salt-empty.pem", set_at(0, octets(b"")))
    edited_pkcs8(scrypt, "pbes2-scrypt-keylen-huge.pem",
                 lambda kdf, _c: kdf.append(integer(1 << 31)))
    edited_pkcs8(scrypt, "pbes2-scrypt-keylen-16.pem", lambda kdf, _c: kdf.append(integer(16)))
    edited_pkcs8(pbkdf2, "pbes2-pbkdf2-iterations-0.pem", set_at(1, integer(0)))
    edited_pkcs8(pbkdf2, "pbes2-pbkdf2-salt-empty.pem", set_at(0, octets(b"")))
    edited_pkcs8(pbkdf2, "pbes2-pbkdf2-salt-64.pem", set_at(0, octets(bytes(range(64)))))
    edited_pkcs8(pbkdf2, "pbes2-pbkdf2-keylen-0.pem", lambda kdf, _c: kdf.insert(2, integer(0)))

    def iv(length):
        def edit(_kdf, cipher):
            cipher[1] = octets(bytes(cipher[1][1][:length]) + bytes(max(0, length - len(cipher[1][1]))))
        return edit
    edited_pkcs8(des3, "pbes2-des3-iv-4.pem", iv(4))
    edited_pkcs8(des3, "pbes2-des3-iv-16.pem", iv(16))
    edited_pkcs8(pbkdf2, "pbes2-aes-iv-15.pem", iv(15))
    edited_pkcs8(pbkdf2, "pbes2-aes-iv-empty.pem", iv(0))


# --- PKCS#12 ---

PKCS7_DATA = "1.2.840.113549.1.7.1"
PKCS7_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
CERT_BAG = "1.2.840.113549.1.12.10.1.3"
X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"


def pfx(auth_safe_contents):
    """PFX version 3, no MAC, whose AuthenticatedSafe holds the given ContentInfos."""
    safes = encode(seq(*auth_safe_contents))
    auth_safe = seq(oid(PKCS7_DATA), explicit0(octets(safes)))
    return encode(seq(integer(3), auth_safe))


def data_info(safe_contents_der):
    return seq(oid(PKCS7_DATA), explicit0(octets(safe_contents_der)))


def shrouded_bag(epki_der):
    return seq(oid(SHROUDED_KEY_BAG), explicit0(parse(epki_der)))


def pbes2_aes256_encrypt(plaintext, iterations):
    """PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) with the password: (AlgorithmIdentifier, ciphertext)."""
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    salt, iv = os.urandom(16), os.urandom(16)
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(PASSWORD.encode())
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(padded) + enc.finalize()
    alg = seq(oid("1.2.840.113549.1.5.13"), seq(
        seq(oid("1.2.840.113549.1.5.12"), seq(octets(salt), integer(iterations),
                                              seq(oid("1.2.840.113549.2.9"), [0x05, b""]))),
        seq(oid("2.16.840.1.101.3.4.1.42"), octets(iv))))
    return alg, ciphertext


def make_pkcs12(tmp):
    # One valid encrypted key at 10,000,000 iterations (openssl derives once, a few seconds).
    slow = os.path.join(tmp, "slow.der")
    openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256", "-iter", "10000000",
            "-in", os.path.join(KEYS, "ec-p256.pkcs8.pem"), "-passout", "pass:" + PASSWORD,
            "-outform", "DER", "-out", slow)
    epki = open(slow, "rb").read()
    cert = open(os.path.join(KEYS, "ec-p256.crt.der"), "rb").read()
    cert_bag = seq(oid(CERT_BAG), explicit0(seq(oid(X509_CERTIFICATE), explicit0(octets(cert)))))
    alg, ciphertext = pbes2_aes256_encrypt(encode(seq(cert_bag)), 10_000_000)
    encrypted = seq(oid(PKCS7_ENCRYPTED_DATA),
                    explicit0(seq(integer(0), seq(oid(PKCS7_DATA), alg, [0x80, ciphertext]))))
    key = data_info(encode(seq(shrouded_bag(epki))))
    with open(os.path.join(HERE, "p12-12-bags-10m.p12"), "wb") as f:
        f.write(pfx([encrypted] * 11 + [key]))

    # A 3DES PKCS#12-PBE shrouded bag at 10,000,000 iterations (its ciphertext is never reached),
    # inside an encryptedData that costs 1 iteration to open.
    pbe_3des = seq(oid("1.2.840.113549.1.12.1.3"), seq(octets(os.urandom(8)), integer(10_000_000)))
    hidden_epki = seq(pbe_3des, octets(os.urandom(48)))
    inner = encode(seq(seq(oid(SHROUDED_KEY_BAG), explicit0(hidden_epki))))
    alg, ciphertext = pbes2_aes256_encrypt(inner, 1)
    encrypted_data = seq(integer(0), seq(oid(PKCS7_DATA), alg, [0x80, ciphertext]))
    info = seq(oid(PKCS7_ENCRYPTED_DATA), explicit0(encrypted_data))
    with open(os.path.join(HERE, "p12-hidden-bag.p12"), "wb") as f:
        f.write(pfx([info]))


def main():
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        make_pkcs8(tmp)
        make_pkcs12(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
