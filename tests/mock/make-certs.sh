#!/usr/bin/env bash
# Make TLS test certificates for the provider emulator.
#
#   tests/mock/make-certs.sh OUTDIR
#
# Writes into OUTDIR:
#   ca.pem, ca.key          a test CA
#   server.pem, server.key  a server certificate signed by it, for
#                           DNS:localhost and IP:127.0.0.1 (and ::1)
#   other-ca.pem, other-ca.key  a second, unrelated CA (verification
#                           against it must fail)
# EC P-256 keys, valid for 7 days.  Idempotent: existing files that are
# still valid for at least a day are kept; otherwise everything is remade.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
mkdir -p "$out"
cd "$out"

days=7
files="ca.pem ca.key server.pem server.key other-ca.pem other-ca.key"

all_fresh() {
    local f
    for f in $files; do
        [ -s "$f" ] || return 1
    done
    openssl x509 -in ca.pem -noout -checkend 86400 >/dev/null 2>&1 || return 1
    openssl x509 -in other-ca.pem -noout -checkend 86400 >/dev/null 2>&1 || return 1
    openssl x509 -in server.pem -noout -checkend 86400 >/dev/null 2>&1 || return 1
    openssl verify -CAfile ca.pem server.pem >/dev/null 2>&1 || return 1
}

if all_fresh; then
    exit 0
fi

tmp=$(mktemp -d "./.make-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

newkey() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

make_ca() { # name subject
    newkey "$tmp/$1.key"
    cat > "$tmp/$1.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = $2
O = libllmroute tests
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
    openssl req -new -x509 -key "$tmp/$1.key" -config "$tmp/$1.cnf" \
        -days "$days" -sha256 -set_serial "0x$(openssl rand -hex 8)" \
        -out "$tmp/$1.pem" 2>/dev/null
}

make_ca ca "libllmroute test CA"
make_ca other-ca "libllmroute unrelated CA"

newkey "$tmp/server.key"
cat > "$tmp/server.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
O = libllmroute tests
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
CNF
openssl req -new -key "$tmp/server.key" -config "$tmp/server.cnf" \
    -out "$tmp/server.csr" 2>/dev/null
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days "$days" -sha256 \
    -extfile "$tmp/server.cnf" -extensions v3_server \
    -out "$tmp/server.pem" 2>/dev/null

openssl verify -CAfile "$tmp/ca.pem" "$tmp/server.pem" >/dev/null

chmod 600 "$tmp"/*.key
for f in $files; do
    mv -f "$tmp/$f" "$f"
done
