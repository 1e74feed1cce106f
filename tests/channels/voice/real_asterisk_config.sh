#!/bin/sh
# Install the samples of docker/asterisk/ into an Asterisk's config directory for
# test_real_asterisk.py and test_real_asterisk_softphone.py: everything bound to 127.0.0.1,
# OMNI_AGI at the test's FastAGI address, the trunk placeholder pointed at 127.0.0.1:5099
# (nothing listens: SIPp when needed); http.conf's TLS listener (wss for the softphone) gets a
# self-signed certificate in <dir>/keys/ when none is there.
# Usage: tests/channels/voice/real_asterisk_config.sh [/etc/asterisk] [127.0.0.1:4599]
# then `asterisk -rx "core reload"` (or start Asterisk). Backs up each replaced file once (.orig).
set -eu
dest=${1:-/etc/asterisk}
agi=${2:-127.0.0.1:4599}
src=$(dirname "$0")/../../../docker/asterisk
for f in extensions pjsip manager musiconhold amd http rtp; do
    [ -e "$dest/$f.conf.orig" ] || [ ! -e "$dest/$f.conf" ] || cp "$dest/$f.conf" "$dest/$f.conf.orig"
done
sed "s/^OMNI_AGI = .*/OMNI_AGI = $agi/" "$src/extensions.conf" > "$dest/extensions.conf"
sed -e 's/^bind = 0.0.0.0:5060/bind = 127.0.0.1:5060/' \
    -e 's/sip\.provider\.example/127.0.0.1:5099/g' \
    -e 's/^from_domain = 127.0.0.1:5099/from_domain = 127.0.0.1/' "$src/pjsip.conf" > "$dest/pjsip.conf"
sed "s|/etc/asterisk/keys/|$dest/keys/|" "$src/http.conf" > "$dest/http.conf"
cp "$src/manager.conf" "$src/musiconhold.conf" "$src/amd.conf" "$src/rtp.conf" "$dest/"
if [ ! -e "$dest/keys/asterisk.crt" ]; then
    mkdir -p "$dest/keys"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$dest/keys/asterisk.key" -out "$dest/keys/asterisk.crt" 2>/dev/null
fi
