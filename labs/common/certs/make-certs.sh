#!/bin/sh
# How the labs' shared test certificates (labs/common/certs/) were made (run once, by hand, with OpenSSL 3;
# no lab runs this: they use the files committed beside it).
#
# A self-signed CA and two workload certificates whose only identity is a SPIFFE URI SAN, shaped
# like the ones istiod issues to ztunnel (spiffe://<trust domain>/ns/<namespace>/sa/<service account>).
# P-256 keys, valid for 100 years so the lab keeps working; these keys are public test material,
# never use them for anything else.
set -eu
days=36500
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days "$days" \
  -subj "/O=insider-lab/CN=insider-lab-ca" -keyout ca-key.pem -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
for sa in client server; do
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/O=insider-lab" \
    -keyout "$sa-key.pem" -out "$sa.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=critical,URI:spiffe://cluster.local/ns/lab/sa/%s\n' "$sa" > "$sa.ext"
  openssl x509 -req -in "$sa.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$days" \
    -extfile "$sa.ext" -out "$sa.pem"
  rm "$sa.csr" "$sa.ext"
done
rm -f ca.srl ca-key.pem
