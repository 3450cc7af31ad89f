"""The generated stubs: current, private, and at peace with the vendor's SDK."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from sttcli._proto import stt_service_pb2 as pb


def test_the_wire_format_is_speechkits() -> None:
    """Field numbers from the public API: a config is field 1, audio field 2, and so on."""
    request = pb.StreamingRecognitionRequest(audio_content=b"\x01\x02")
    assert request.SerializeToString() == b"\x12\x02\x01\x02"
    spec = pb.RecognitionSpec(
        audio_encoding=pb.RecognitionSpec.OGG_OPUS,
        sample_rate_hertz=48000,
        language_code="ru-RU",
        partial_results=True,
        raw_results=True,
    )
    assert spec.SerializeToString() == (b"\x08\x02\x10\x80\xf7\x02\x1a\x05ru-RU\x38\x01\x50\x01")
    chunk = pb.SpeechRecognitionChunk(final=True, end_of_utterance=True)
    assert chunk.SerializeToString() == b"\x10\x01\x18\x01"


def test_the_vendors_stubs_and_sttclis_load_in_one_process() -> None:
    """The vendor's SDK registers the same proto file, with more in it, in the global pool."""
    script = textwrap.dedent(
        """
        from google.protobuf import descriptor_pb2, descriptor_pool

        def register_vendor_file():
            vendor = descriptor_pb2.FileDescriptorProto(
                name="yandex/cloud/ai/stt/v2/stt_service.proto",
                package="yandex.cloud.ai.stt.v2",
                syntax="proto3",
            )
            message = vendor.message_type.add(name="StreamingRecognitionRequest")
            message.field.add(name="audio_content", number=2, type=12, label=1)
            vendor.message_type.add(name="SomethingOnlyTheVendorHas")
            descriptor_pool.Default().Add(vendor)

        import sys
        if sys.argv[1] == "vendor-first":
            register_vendor_file()
        from sttcli._proto import stt_service_pb2 as pb
        if sys.argv[1] == "sttcli-first":
            register_vendor_file()
        request = pb.StreamingRecognitionRequest(audio_content=b"ok")
        assert pb.StreamingRecognitionRequest.FromString(request.SerializeToString()) == request
        print("ok")
        """
    )
    for order in ("vendor-first", "sttcli-first"):
        done = subprocess.run(
            [sys.executable, "-c", script, order], capture_output=True, text=True, check=False
        )
        assert done.stdout == "ok\n", done.stderr
