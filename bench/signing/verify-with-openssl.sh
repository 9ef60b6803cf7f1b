#!/bin/sh
# Verify a meterbench signed bundle with nothing but OpenSSL (3.0 or later)
# and a POSIX shell:
#
#   sh verify-with-openssl.sh BUNDLE_DIR [EXPECTED_KEY_ID]
#
# Checks that MANIFEST.sig is a valid Ed25519 signature over the exact bytes
# of MANIFEST.sha256 made with signer.pub.pem, that every file listed there
# has the listed SHA-256, and that the bundle holds no other file.
# Prints each result; exits 0 if the bundle verifies, 1 if not, 2 on misuse.
#
# signer.pub.pem travels with the bundle, so a valid signature only proves
# that the holder of that key signed it: compare the key id printed at the end
# with the one the lab publishes, or pass it as EXPECTED_KEY_ID.
set -u

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 BUNDLE_DIR [EXPECTED_KEY_ID]" >&2
    exit 2
fi
expected_key_id=${2:-}
command -v openssl >/dev/null 2>&1 || { echo "openssl not found in PATH" >&2; exit 2; }
cd "$1" 2>/dev/null || { echo "$1: not a folder" >&2; exit 2; }

status=0
# printf, not echo: some shells' echo interprets backslashes in file names.
fail() { printf 'FAILED: %s\n' "$*"; status=1; }

for f in MANIFEST.sha256 MANIFEST.sig signer.pub.pem; do
    [ -f "$f" ] || fail "$f: missing"
done
[ -f MANIFEST.sha256 ] || { echo "FAILED: $1 is not a signed bundle"; exit 1; }

# 1. The signature: Ed25519 over the exact bytes of MANIFEST.sha256, whose
#    header names the key id and whose lines list every file's SHA-256.
if openssl pkeyutl -verify -pubin -inkey signer.pub.pem -rawin \
        -in MANIFEST.sha256 -sigfile MANIFEST.sig >/dev/null 2>&1; then
    echo "MANIFEST.sig: OK (signature over MANIFEST.sha256 verifies with signer.pub.pem)"
else
    fail "MANIFEST.sig: signature over MANIFEST.sha256 does not verify with signer.pub.pem"
fi

# 2. The key id: the first 16 hex digits of SHA-256 over the public key's DER.
key_id=
if openssl pkey -pubin -in signer.pub.pem -noout >/dev/null 2>&1; then
    der_sha256=$(openssl pkey -pubin -in signer.pub.pem -outform DER | openssl dgst -sha256 -r)
    key_id=${der_sha256%"${der_sha256#????????????????}"}
else
    fail "signer.pub.pem: not a readable public key"
fi
header_key_id=
signer=
while IFS= read -r line; do
    case $line in
        '# key-id: '*) header_key_id=${line#'# key-id: '} ;;
        '# signer: '*) signer=${line#'# signer: '} ;;
        '#'*) ;;
        *) break ;;
    esac
done < MANIFEST.sha256
if [ -n "$key_id" ] && [ "$header_key_id" != "$key_id" ]; then
    fail "MANIFEST.sha256: header names key id '$header_key_id', but signer.pub.pem has key id $key_id"
fi
if [ -n "$expected_key_id" ] && [ "$key_id" != "$expected_key_id" ]; then
    fail "signer.pub.pem: key id '$key_id' is not the expected key id $expected_key_id"
fi

# 3. Every listed file, one '<sha256> *<path>' line each (what 'openssl dgst -sha256 -r' prints).
files=0
while IFS= read -r line || [ -n "$line" ]; do
    case $line in '#'*) continue ;; esac
    want=${line%% *}
    path=${line#"$want *"}
    case $want in *[!0-9a-f]*) want= ;; esac
    if [ ${#want} -ne 64 ] || [ "$path" = "$line" ] || [ -z "$path" ]; then
        fail "MANIFEST.sha256: malformed line: $line"
        continue
    fi
    case /$path/ in
        *//* | */./* | */../*)
            fail "$path: unsafe path in MANIFEST.sha256 (absolute, '.' or '..')"
            continue ;;
    esac
    files=$((files + 1))
    if [ -L "$path" ] || { [ -e "$path" ] && [ ! -f "$path" ]; }; then
        fail "$path: not a regular file"
    elif [ ! -e "$path" ]; then
        fail "$path: listed in the manifest but missing"
    else
        got=$(openssl dgst -sha256 -r "./$path" </dev/null 2>/dev/null)
        got=${got%% *}
        if [ "$got" = "$want" ]; then
            printf '%s: OK\n' "$path"
        else
            fail "$path: SHA-256 differs from the manifest (expected $want, got ${got:-nothing})"
        fi
    fi
done < MANIFEST.sha256

# 4. No file that the manifest does not list.
listed() {
    while IFS= read -r l || [ -n "$l" ]; do
        case $l in '#'*) continue ;; esac
        [ "${l#* \*}" = "$1" ] && return 0
    done < MANIFEST.sha256
    return 1
}
walk() {
    # The three patterns match every name but '.' and '..'; one that matches
    # nothing stays literal and fails the -e test.
    for f in "$1"* "$1".[!.]* "$1"..?*; do
        if [ -L "$f" ]; then
            fail "$f: a symbolic link; a bundle holds only regular files"
        elif [ -d "$f" ]; then
            walk "$f/"
        elif [ ! -e "$f" ]; then
            :
        elif [ -z "$1" ] && { [ "$f" = MANIFEST.sha256 ] || [ "$f" = MANIFEST.sig ]; }; then
            :
        elif [ ! -f "$f" ]; then
            fail "$f: not a regular file"
        elif ! listed "$f"; then
            fail "$f: present but not in the manifest"
        fi
    done
}
walk ""

if [ "$status" -eq 0 ]; then
    echo "OK: signature valid, $files files match MANIFEST.sha256, no other files;" \
        "signed by key id $key_id ($signer)"
    if [ -z "$expected_key_id" ]; then
        echo "Trust: compare key id $key_id with the one the lab publishes."
    fi
else
    echo "FAILED: bundle $1 does not verify"
fi
exit "$status"
