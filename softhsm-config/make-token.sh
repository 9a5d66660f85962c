#!/usr/bin/env bash
# Makes a throwaway SoftHSM2 token in DIR with keys generated ON the token by pkcs11-tool:
#   id 01 label ec-p256  (EC P-256)
#   id 02 label ec-p384  (EC P-384)
#   id 03 label rsa-2048 (RSA 2048)
# Public keys are exported to DIR/<label>.pub.pem. With CA_DIR (a `rolesanywhere-emulator ca init`
# directory), each key also gets a certificate issued by that CA (DIR/<label>.cert.pem), written to
# the token under the key's id and label.
#
# Usage: make-token.sh DIR [CA_DIR]
# Environment: TOKEN_LABEL (ra), PIN (1234), SO_PIN (5678), SOFTHSM_MODULE, EMULATOR (the
# rolesanywhere-emulator binary, default: from PATH, else target/debug).
# Prints the settings to use (SOFTHSM2_CONF, URIs). These PINs are test defaults: never use them
# for a token that guards anything.
set -euo pipefail

usage() { echo "usage: $0 DIR [CA_DIR]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
ca_dir=${2:-}
label=${TOKEN_LABEL:-ra}
pin=${PIN:-1234}
so_pin=${SO_PIN:-5678}
module=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

for tool in softhsm2-util pkcs11-tool openssl; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is not installed" >&2; exit 1; }
done
[ -f "$module" ] || { echo "$0: SoftHSM module $module not found (set SOFTHSM_MODULE)" >&2; exit 1; }

mkdir -p "$dir/tokens"
sed "s|@TOKENDIR@|$dir/tokens|" "$here/softhsm2.conf.in" >"$dir/softhsm2.conf"
export SOFTHSM2_CONF=$dir/softhsm2.conf

softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$so_pin" >/dev/null

p11() { pkcs11-tool --module "$module" --token-label "$label" --login --pin "$pin" "$@" >/dev/null 2>&1; }

emulator=${EMULATOR:-}
if [ -n "$ca_dir" ] && [ -z "$emulator" ]; then
    if command -v rolesanywhere-emulator >/dev/null; then
        emulator=rolesanywhere-emulator
    elif [ -x "$here/../target/debug/rolesanywhere-emulator" ]; then
        emulator=$here/../target/debug/rolesanywhere-emulator
    else
        echo "$0: rolesanywhere-emulator not found (build it or set EMULATOR)" >&2
        exit 1
    fi
fi

# SubjectPublicKeyInfo DER prefixes (algorithm + curve + BIT STRING header) by CKA_EC_PARAMS.
spki_prefix() {
    case $1 in
        06082a8648ce3d030107) echo 3059301306072a8648ce3d020106082a8648ce3d030107034200 ;;
        06052b81040022) echo 3076301006072a8648ce3d020106052b81040022036200 ;;
        *) echo "$0: unsupported curve parameters $1" >&2; return 1 ;;
    esac
}

export_public() { # id out.pem
    # pkcs11-tool 0.23 cannot export P-384 public keys ("cannot create EVP_PKEY"), so EC keys are
    # rebuilt from CKA_EC_POINT (a DER OCTET STRING: 04 LEN point) and CKA_EC_PARAMS.
    local id=$1 out=$2 listing point params
    listing=$(pkcs11-tool --module "$module" --token-label "$label" --list-objects --type pubkey 2>/dev/null |
        awk -v want="$id" '/Object;/ {p=""; c=""} /EC_POINT:/ {p=$2} /EC_PARAMS:/ {c=$2} /ID:/ {if ($2==want && p!="") {print p, c; exit}}')
    if [ -n "$listing" ]; then
        read -r point params <<<"$listing"
        printf '%s%s' "$(spki_prefix "$params")" "${point:4}" | perl -ne 'print pack("H*", $_)' >"$out.der"
    else
        pkcs11-tool --module "$module" --token-label "$label" --read-object --type pubkey --id "$id" \
            -o "$out.der" >/dev/null 2>&1
    fi
    openssl pkey -pubin -inform DER -in "$out.der" -out "$out"
    rm -f "$out.der"
}

make_key() { # id label key-type
    local id=$1 name=$2 type=$3
    p11 --keypairgen --key-type "$type" --id "$id" --label "$name" --usage-sign
    export_public "$id" "$dir/$name.pub.pem"
    if [ -n "$ca_dir" ]; then
        "$emulator" ca issue --dir "$ca_dir" --public-key "$dir/$name.pub.pem" \
            --subject "CN=$name,O=rolesanywhere-agent demo" --out "$dir/$name.cert.pem"
        openssl x509 -in "$dir/$name.cert.pem" -outform DER -out "$dir/$name.cert.der"
        p11 --write-object "$dir/$name.cert.der" --type cert --id "$id" --label "$name"
        rm -f "$dir/$name.cert.der"
    fi
}

make_key 01 ec-p256 EC:prime256v1
make_key 02 ec-p384 EC:secp384r1
make_key 03 rsa-2048 rsa:2048

cat <<EOT
export SOFTHSM2_CONF=$dir/softhsm2.conf
# token "$label", user PIN $pin, SO PIN $so_pin (test defaults)
# keys: pkcs11:token=$label;object=ec-p256 (id 01), ...;object=ec-p384 (02), ...;object=rsa-2048 (03)
# public keys: $dir/{ec-p256,ec-p384,rsa-2048}.pub.pem
EOT
if [ -n "$ca_dir" ]; then
    cat <<EOT
# certificates (also on the token): $dir/{ec-p256,ec-p384,rsa-2048}.cert.pem
# e.g. ROLESANYWHERE_PKCS11_PIN=$pin rolesanywhere-agent credential-process --pkcs11-lib $module \\
#   --certificate 'pkcs11:token=$label;object=ec-p256' --trust-anchor-arn … --profile-arn … --role-arn …
EOT
fi
