#!/bin/sh
# rhel-trust.sh ROOTS DISTRUSTED OUTDIR
#
# Writes OUTDIR/tls-ca-bundle.pem and OUTDIR/ca-bundle.trust.crt the way
# RHEL's and UBI's update-ca-trust does, with p11-kit's trust command (Debian
# package p11-kit): the anchors are the PEM certificates of ROOTS, and the
# certificate of DISTRUSTED (PEM) is marked distrusted as RHEL's
# ca-certificates package ships such CAs (a .p11-kit object with
# x-distrusted: true).
set -eu
roots=$1 distrusted=$2 out=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home/.config/pkcs11/modules" "$work/src/anchors" "$work/out"
cp "$roots" "$work/src/anchors/roots.pem"
{ printf '[p11-kit-object-v1]\nclass: certificate\nx-distrusted: true\n'; cat "$distrusted"; } >"$work/src/distrusted.p11-kit"
printf 'module: p11-kit-trust.so\ntrust-policy: yes\nx-init-reserved: paths=%s\n' "$work/src" \
	>"$work/home/.config/pkcs11/modules/p11-kit-trust.module"
chmod -R a+rwX "$work"
# p11-kit reads a user's module configuration, never root's: run trust as nobody then.
as=
if [ "$(id -u)" = 0 ]; then as="setpriv --reuid=65534 --regid=65534 --clear-groups"; fi
# The two commands of update-ca-trust (ca-certificates' update-ca-trust script).
$as env -i HOME="$work/home" PATH=/usr/bin:/bin trust extract --format=pem-bundle --filter=ca-anchors \
	--overwrite --comment --purpose server-auth "$work/out/tls-ca-bundle.pem"
$as env -i HOME="$work/home" PATH=/usr/bin:/bin trust extract --format=openssl-bundle --filter=certificates \
	--overwrite --comment "$work/out/ca-bundle.trust.crt"
cp "$work/out/tls-ca-bundle.pem" "$work/out/ca-bundle.trust.crt" "$out/"
