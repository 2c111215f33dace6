#!/bin/sh
# Kaiser - development certificate authority for the production broker configuration (mosquitto.prod.conf).
#
#   mosquitto/gen-dev-ca.sh [OUT_DIR] [CLIENT_NAME ...]
#
# Writes into OUT_DIR (default mosquitto/certs):
#   ca.crt / ca.key          a self-signed CA (10 years). Devices and the server trust ca.crt.
#   server.crt / server.key  the broker's certificate, CN=localhost, SAN DNS:localhost, IP:127.0.0.1
#                            (add names with BROKER_SANS="DNS:mqtt.example.org,IP:10.0.0.5").
#   <name>.crt / <name>.key  one client certificate per CLIENT_NAME (optional; Kaiser authenticates devices by
#                            username/password, client certificates are for setups that add require_certificate).
#
# FOR DEVELOPMENT AND TESTS ONLY: the CA key lies next to the certificates, unencrypted. Use a real PKI in production.
# Existing files are kept (delete OUT_DIR to start over), so re-running only adds missing client certificates.
set -eu

OUT=${1:-mosquitto/certs}
[ $# -gt 0 ] && shift
DAYS=${DAYS:-3650}
SANS="DNS:localhost,IP:127.0.0.1${BROKER_SANS:+,$BROKER_SANS}"

mkdir -p "$OUT"
cd "$OUT"

if [ ! -f ca.key ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$DAYS" \
        -keyout ca.key -out ca.crt -subj "/CN=Kaiser development CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# sign NAME SUBJECT EXTENSIONS
sign() {
    [ -f "$1.crt" ] && return 0
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$DAYS" -sha256 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

sign server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$SANS"

for name in "$@"; do
    sign "$name" "/CN=$name" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
done

# Mosquitto drops to the "mosquitto" user: it must read the keys. Keep OUT_DIR itself private to that user/group.
chmod 644 ./*.crt
chmod 644 ./*.key
chmod 600 ca.key
echo "Development CA and certificates in $(pwd)"
