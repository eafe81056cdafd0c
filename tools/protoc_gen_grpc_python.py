"""A protoc plugin that writes the gRPC Python stubs (``*_pb2_grpc.py``) with grpcio-tools.

grpcio-tools links the gRPC Python generator into its own ``protoc`` (``python -m
grpc_tools.protoc --grpc_python_out``) but ships no ``protoc-gen-grpc_python`` executable, so
``buf generate`` cannot call it as a plugin. This script is that plugin: it reads the
``CodeGeneratorRequest`` buf sends, hands the request's files to ``grpc_tools.protoc`` as a
descriptor set, and answers with the files it wrote. ``buf.gen.python.yaml`` uses it::

    - local: [python, tools/protoc_gen_grpc_python.py]
      out: clients/python

It needs only the project's locked dependencies (grpcio-tools, protobuf): no network.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """The stubs of ``request.file_to_generate``, or a response carrying protoc's error."""
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory(prefix="protoc-gen-grpc-python-") as work:
        descriptor_set = Path(work) / "request.binpb"
        descriptor_set.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = Path(work) / "out"
        out.mkdir()
        parameter = f"{request.parameter}:" if request.parameter else ""
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"--descriptor_set_in={descriptor_set}",
                f"--grpc_python_out={parameter}{out}",
                *request.file_to_generate,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            response.error = completed.stderr.strip() or "grpc_tools.protoc failed"
            return response
        for path in sorted(out.rglob("*")):
            if path.is_file():
                response.file.add(
                    name=path.relative_to(out).as_posix(), content=path.read_text(encoding="utf-8")
                )
    return response


def main() -> None:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
