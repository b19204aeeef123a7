"""A stand-in for pilot-agent's SDS server: gRPC SecretDiscoveryService on a Unix socket.

    python3 sds_standin.py --unix ./var/run/secrets/workload-spiffe-uds/socket \
        --cert cert.pem --key key.pem --log sds.log

It is not pilot-agent: there is no CA, no CSR and no rotation. It serves the two resource names
Istio's Envoy configuration asks for, from files: "default" (the workload certificate chain and
its private key) and "ROOTCA" (the trusted root; here the same self-signed certificate). Like
pilot-agent's sdsservice (security/pkg/nodeagent/sds/sdsservice.go), it answers the state-of-the-
world StreamSecrets only and refuses DeltaSecrets. Each request is logged on one line.
"""

import argparse
import itertools
import os
from concurrent import futures

import grpc
from google.protobuf import any_pb2

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


class Log:
    def __init__(self, path):
        self.path = path

    def write(self, line):
        with open(self.path, "a") as f:
            f.write(line + "\n")


class SDS(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    def __init__(self, cert: bytes, key: bytes, log: Log):
        self.cert, self.key, self.log = cert, key, log
        self.nonces = itertools.count(1)

    def secret(self, name: str):
        if name == "default":
            return secret_pb2.Secret(name=name, tls_certificate=common_pb2.TlsCertificate(
                certificate_chain=base_pb2.DataSource(inline_bytes=self.cert),
                private_key=base_pb2.DataSource(inline_bytes=self.key)))  # fmt: skip
        if name == "ROOTCA":
            return secret_pb2.Secret(name=name, validation_context=common_pb2.CertificateValidationContext(
                trusted_ca=base_pb2.DataSource(inline_bytes=self.cert)))  # fmt: skip
        return None

    def StreamSecrets(self, request_iterator, context):  # noqa: N802 - gRPC's name
        for req in request_iterator:
            names = ",".join(req.resource_names)
            if req.response_nonce:
                self.log.write(f"<- [{names}] ACK version_info={req.version_info!r}")
                continue
            self.log.write(f"<- [{names}] new request")
            resources = []
            for name in req.resource_names:
                secret = self.secret(name)
                if secret is not None:
                    wrapped = any_pb2.Any()
                    wrapped.Pack(secret)
                    resources.append(wrapped)
                    kind = "tls_certificate" if secret.HasField("tls_certificate") else "validation_context"
                    self.log.write(f"-> {name} ({kind})")
            nonce = str(next(self.nonces))
            yield discovery_pb2.DiscoveryResponse(version_info="v1", type_url=SECRET_TYPE, nonce=nonce,
                                                  resources=resources)  # fmt: skip

    def DeltaSecrets(self, request_iterator, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "DeltaSecrets not implemented")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--unix", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    with open(args.cert, "rb") as f:
        cert = f.read()
    with open(args.key, "rb") as f:
        key = f.read()
    os.makedirs(os.path.dirname(args.unix), exist_ok=True)
    if os.path.exists(args.unix):
        os.unlink(args.unix)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(SDS(cert, key, Log(args.log)), server)
    server.add_insecure_port(f"unix:{args.unix}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
