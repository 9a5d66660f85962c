#!/bin/sh
# Makes the key-file fixtures the file backend's tests load. Run from anywhere; writes beside itself.
# Every key is a throwaway test key. Each loadable fixture X gets X.pub.der: the SubjectPublicKeyInfo
# that openssl itself reports for it, so the tests compare our parser with an independent one.
set -eu
cd "$(dirname "$0")"
rm -f ./*.pem ./*.der ./*.p12 ./*.crt password.txt
PW=correct-horse-battery
printf '%s\n' "$PW" > password.txt

pub() { # pub KEYFILE [openssl pkey input options]: record openssl's view of the public key
    in=$1; shift
    openssl pkey "$@" -in "$in" -pubout -outform DER -out "$in.pub.der"
}

# Plain keys: PKCS#1 / SEC1 (traditional) and PKCS#8, PEM and some DER.
for bits in 2048 3072 4096; do
    openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:$bits -out rsa$bits.pkcs8.pem
    openssl pkey -in rsa$bits.pkcs8.pem -traditional -out rsa$bits.pkcs1.pem
    pub rsa$bits.pkcs8.pem; pub rsa$bits.pkcs1.pem
done
openssl rsa -in rsa2048.pkcs8.pem -traditional -outform DER -out rsa2048.pkcs1.der; pub rsa2048.pkcs1.der -inform DER
openssl pkey -in rsa3072.pkcs8.pem -outform DER -out rsa3072.pkcs8.der; pub rsa3072.pkcs8.der -inform DER
for c in P-256 P-384 P-521; do
    n=ec-$(echo $c | tr -d - | tr P p)
    openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:$c -pkeyopt ec_param_enc:named_curve -out $n.pkcs8.pem
    openssl pkey -in $n.pkcs8.pem -traditional -out $n.sec1.pem
    pub $n.pkcs8.pem; pub $n.sec1.pem
done
openssl ec -in ec-p256.pkcs8.pem -outform DER -out ec-p256.sec1.der 2>/dev/null; pub ec-p256.sec1.der -inform DER
openssl pkey -in ec-p521.pkcs8.pem -outform DER -out ec-p521.pkcs8.der; pub ec-p521.pkcs8.der -inform DER
# `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
openssl ecparam -name secp384r1 -genkey -out ec-p384.params-sec1.pem; pub ec-p384.params-sec1.pem

# Encrypted PKCS#8 (PBES2): PBKDF2 with each PRF, scrypt, and each AES key size.
openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA512 -in rsa2048.pkcs8.pem -passout pass:$PW -out rsa2048.enc-aes256-sha512.pem
openssl pkcs8 -topk8 -v2 aes-256-cbc -scrypt -in ec-p256.pkcs8.pem -passout pass:$PW -out ec-p256.enc-scrypt.pem
openssl pkcs8 -topk8 -v2 aes-128-cbc -v2prf hmacWithSHA1 -in ec-p384.pkcs8.pem -passout pass:$PW -out ec-p384.enc-aes128-sha1.pem
openssl pkcs8 -topk8 -v2 aes-192-cbc -in ec-p521.pkcs8.pem -passout pass:$PW -outform DER -out ec-p521.enc-aes192-sha256.der
openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA384 -in rsa3072.pkcs8.pem -passout pass:$PW -out rsa3072.enc-aes256-sha384.pem
for f in rsa2048.enc-aes256-sha512.pem ec-p256.enc-scrypt.pem ec-p384.enc-aes128-sha1.pem rsa3072.enc-aes256-sha384.pem; do
    pub $f -passin pass:$PW
done
pub ec-p521.enc-aes192-sha256.der -inform DER -passin pass:$PW

# PKCS#12 with a self-signed certificate: openssl 3 defaults (PBES2 AES-256-CBC, HMAC-SHA256 MAC) and
# -legacy (3DES key bag, RC2-40 certificate bag, HMAC-SHA1 MAC).
selfsigned() { openssl req -x509 -new -key "$1" -subj "/CN=$2" -days 3650 -out "$2.crt"; }
selfsigned rsa2048.pkcs8.pem rsa2048
selfsigned ec-p256.pkcs8.pem ec-p256
selfsigned ec-p384.pkcs8.pem ec-p384
selfsigned rsa4096.pkcs8.pem rsa4096
openssl pkcs12 -export -inkey rsa2048.pkcs8.pem -in rsa2048.crt -passout pass:$PW -out rsa2048.p12
openssl pkcs12 -export -inkey ec-p256.pkcs8.pem -in ec-p256.crt -passout pass:$PW -out ec-p256.p12
openssl pkcs12 -export -legacy -inkey rsa4096.pkcs8.pem -in rsa4096.crt -passout pass:$PW -out rsa4096-legacy.p12
openssl pkcs12 -export -legacy -inkey ec-p384.pkcs8.pem -in ec-p384.crt -passout pass:$PW -out ec-p384-legacy.p12
# A chain: a leaf issued by a test CA, with the CA certificate in the file too.
openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key.pem
openssl req -x509 -new -key ca.key.pem -subj /CN=test-ca -days 3650 -out ca.crt
openssl req -new -key ec-p256.pkcs8.pem -subj /CN=leaf | \
    openssl x509 -req -CA ca.crt -CAkey ca.key.pem -CAcreateserial -days 3650 -out leaf.crt 2>/dev/null
rm -f ca.srl
openssl pkcs12 -export -inkey ec-p256.pkcs8.pem -in leaf.crt -certfile ca.crt -passout pass:$PW -out ec-p256-chain.p12
# Variants: the empty password (modern and legacy), no MAC, and no encryption (MAC only).
openssl pkcs12 -export -inkey ec-p256.pkcs8.pem -in ec-p256.crt -passout pass: -out ec-p256.empty-password.p12
openssl pkcs12 -export -legacy -inkey ec-p256.pkcs8.pem -in ec-p256.crt -passout pass: -out ec-p256.empty-password-legacy.p12
openssl pkcs12 -export -nomac -inkey ec-p256.pkcs8.pem -in ec-p256.crt -passout pass:$PW -out ec-p256.nomac.p12
openssl pkcs12 -export -keypbe NONE -certpbe NONE -inkey ec-p256.pkcs8.pem -in ec-p256.crt -passout pass:$PW -out ec-p256.unencrypted.p12
for f in rsa2048.p12 ec-p256.p12 ec-p256-chain.p12; do
    openssl pkcs12 -in $f -passin pass:$PW -nocerts -nodes | openssl pkey -pubout -outform DER -out $f.pub.der
done
for f in rsa4096-legacy.p12 ec-p384-legacy.p12; do
    openssl pkcs12 -legacy -in $f -passin pass:$PW -nocerts -nodes | openssl pkey -pubout -outform DER -out $f.pub.der
done
for f in rsa2048 ec-p256 ec-p384 rsa4096 ca leaf; do openssl x509 -in $f.crt -outform DER -out $f.crt.der; done
rm -f ./*.crt ca.key.pem

# Refused on purpose.
openssl pkey -in rsa2048.pkcs8.pem -traditional -aes256 -passout pass:$PW -out refused.legacy-encrypted.pem
openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out refused.rsa1024.pem
openssl genpkey -quiet -algorithm ED25519 -out refused.ed25519.pem
openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:secp224r1 -out refused.ec-p224.pem
openssl pkey -in ec-p256.pkcs8.pem -pubout -out refused.public-key.pem
