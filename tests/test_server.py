"""The servicer keeps SpeechKit's v2 contract, shown on the deterministic engine."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from support.audio import markers
from support.servers import RecordingEngine, recognize, requests, running_server, spec

from sttcli._proto import stt_service_pb2 as pb
from sttcli.server.servicer import Auth, Limits
from sttcli.server.synthetic import SyntheticEngine

Spec = pb.RecognitionSpec


@pytest.fixture
def engine() -> RecordingEngine:
    return RecordingEngine(SyntheticEngine())


@pytest.fixture
def address(engine: RecordingEngine) -> Iterator[str]:
    with running_server(engine) as bound:
        yield bound


def finals(chunks: list[pb.SpeechRecognitionChunk]) -> list[str]:
    return [c.alternatives[0].text for c in chunks if c.final]


def rejection(address: str, request_iterator, **kwargs) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        recognize(address, request_iterator, **kwargs)
    return caught.value


# -- results -----------------------------------------------------------------


def test_each_utterance_ends_in_one_final_with_end_of_utterance(address: str) -> None:
    chunks = recognize(address, requests(markers("alpha bravo", "charlie")))
    assert finals(chunks) == ["alpha bravo", "charlie"]
    assert all(c.end_of_utterance for c in chunks if c.final)


def test_partials_come_only_when_asked_and_only_when_the_text_changes(address: str) -> None:
    chunks = recognize(address, requests(markers("alpha bravo"), spec(partial_results=True)))
    assert [(c.alternatives[0].text, c.final) for c in chunks] == [
        ("alpha", False),
        ("alpha bravo", False),
        ("alpha bravo", True),
    ]
    without = recognize(address, requests(markers("alpha bravo")))
    assert all(c.final for c in without)


def test_the_last_utterance_is_flushed_at_the_end_of_the_stream(address: str) -> None:
    audio = markers("delta")[:-16000]  # cut the trailing silence: no pause to end it
    assert finals(recognize(address, requests(audio))) == ["delta"]


def test_finals_carry_word_timings(address: str) -> None:
    (final,) = recognize(address, requests(markers("alpha bravo", lead=0.5)))
    words = final.alternatives[0].words
    assert [w.word for w in words] == ["alpha", "bravo"]
    assert words[0].start_time.ToMilliseconds() == 500
    assert words[1].end_time.ToMilliseconds() == 500 + 200 + 50 + 200


def test_results_do_not_depend_on_how_audio_is_split(address: str) -> None:
    audio = markers("echo foxtrot", "golf")
    assert recognize(address, requests(audio, chunk=4000)) == recognize(
        address, requests(audio, chunk=333)
    )


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_every_lpcm_rate_is_accepted(address: str, rate: int) -> None:
    chunks = recognize(address, requests(markers("hotel", rate=rate), spec(sample_rate_hertz=rate)))
    assert finals(chunks) == ["hotel"]


def test_a_missing_rate_means_48000(address: str) -> None:
    chunks = recognize(address, requests(markers("india", rate=48000), spec(sample_rate_hertz=0)))
    assert finals(chunks) == ["india"]


def test_single_utterance_stops_after_the_first_final_and_waits_for_the_client(
    address: str,
) -> None:
    sent: queue.Queue[pb.StreamingRecognitionRequest | None] = queue.Queue()
    audio = markers("kilo", "lima", "mike")

    def request_iterator() -> Iterator[pb.StreamingRecognitionRequest]:
        yield from requests(audio, spec(single_utterance=True))
        time.sleep(0.3)  # the server must not end the call before we close
        yield pb.StreamingRecognitionRequest(audio_content=markers("november"))
        sent.put(None)

    chunks = recognize(address, request_iterator())
    assert finals(chunks) == ["kilo"]
    assert sent.get_nowait() is None  # every request was read: the server waited


def test_the_server_names_each_stream(engine: RecordingEngine) -> None:
    with running_server(engine) as bound, grpc.insecure_channel(bound) as channel:
        call = pb_stub(channel).StreamingRecognize(requests(markers("oscar")))
        list(call)
        assert dict(call.initial_metadata())["x-request-id"]


def pb_stub(channel: grpc.Channel):  # type: ignore[no-untyped-def]
    from sttcli._proto import stt_service_pb2_grpc as rpc

    return rpc.SttServiceStub(channel)


# -- validation -------------------------------------------------------------


def audio_first() -> Iterator[pb.StreamingRecognitionRequest]:
    yield pb.StreamingRecognitionRequest(audio_content=b"\x00\x00")


def config_twice() -> Iterator[pb.StreamingRecognitionRequest]:
    yield from requests(b"\x00" * 100)
    yield pb.StreamingRecognitionRequest(config=pb.RecognitionConfig(specification=spec()))


@pytest.mark.parametrize(
    ("request_iterator", "complaint"),
    [
        (lambda: iter(()), "ended before its config"),
        (audio_first, "first message must carry the config"),
        (config_twice, "only the first message may carry a config"),
        (lambda: requests(b"", spec(sample_rate_hertz=44100)), "sample_rate_hertz 44100"),
        (lambda: requests(b"", spec(audio_encoding=Spec.MP3)), "MP3 is not supported"),
        (lambda: requests(b"", spec(audio_channel_count=2)), "only mono"),
        (lambda: requests(b"", spec(language_code="ru-RU")), "this server has: en-US"),
        (lambda: requests(b"", spec(model="deferred-general")), "use 'general'"),
    ],
)
def test_bad_streams_are_invalid_argument_with_a_reason(
    address: str, request_iterator, complaint: str
) -> None:
    error = rejection(address, request_iterator())
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert complaint in error.details()


@pytest.mark.parametrize(
    "fields", [{"language_code": "en-US"}, {"language_code": "EN-us"}, {"model": "general"}]
)
def test_the_engines_language_and_the_general_model_are_accepted(address: str, fields) -> None:
    assert finals(recognize(address, requests(markers("papa"), spec(**fields)))) == ["papa"]


@pytest.mark.parametrize(
    ("limits", "audio"),
    [
        (Limits(max_seconds=1.0), markers("alpha", gap=1.5)),
        (Limits(max_bytes=10_000), markers("alpha", gap=1.5)),
    ],
    ids=["seconds", "bytes"],
)
def test_a_stream_over_its_limit_is_out_of_range(limits: Limits, audio: bytes) -> None:
    with running_server(SyntheticEngine(), limits=limits) as bound:
        error = rejection(bound, requests(audio))
    assert error.code() is grpc.StatusCode.OUT_OF_RANGE
    assert "session limit reached" in error.details()


# -- authentication ------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "header", "accepted"),
    [
        (Auth(api_keys=("k1",)), "Api-Key k1", True),
        (Auth(api_keys=("k1",)), "Api-Key k2", False),
        (Auth(api_keys=("k1",)), "Bearer k1", False),
        (Auth(iam_tokens=("t1",)), "Bearer t1", True),
        (Auth(api_keys=("k1",), iam_tokens=("t1",)), "Bearer t1", True),
        (Auth(api_keys=("k1",), iam_tokens=("t1",)), "Api-Key k1", True),
        (Auth(api_keys=("k1",)), None, False),
        (Auth(), "Bearer anything", True),
        (Auth(), None, True),
    ],
)
def test_credentials_are_checked_when_the_server_requires_them(
    auth: Auth, header: str | None, accepted: bool
) -> None:
    metadata = [("authorization", header)] if header else []
    with running_server(SyntheticEngine(), auth=auth) as bound:
        if accepted:
            assert finals(recognize(bound, requests(markers("quebec")), metadata)) == ["quebec"]
        else:
            error = rejection(bound, requests(markers("quebec")), metadata=metadata)
            assert error.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "k2" not in error.details() and "k1" not in error.details()


# -- streams and sessions ---------------------------------------------------------


def test_concurrent_streams_each_get_their_own_results(address: str) -> None:
    words = ["romeo", "sierra", "tango", "uniform", "victor", "whiskey"]
    results: dict[str, list[str]] = {}

    def run(word: str) -> None:
        results[word] = finals(recognize(address, requests(markers(f"{word} {word}"), chunk=500)))

    threads = [threading.Thread(target=run, args=(w,)) for w in words]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {w: [f"{w} {w}"] for w in words}


def test_a_client_that_goes_away_frees_its_session(engine: RecordingEngine) -> None:
    with running_server(engine) as bound, grpc.insecure_channel(bound) as channel:
        release = threading.Event()

        def slow() -> Iterator[pb.StreamingRecognitionRequest]:
            yield from requests(markers("xray"))
            release.wait(5)

        call = pb_stub(channel).StreamingRecognize(slow())
        deadline = time.monotonic() + 5
        while engine.opened == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        call.cancel()
        release.set()
        while engine.closed == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert (engine.opened, engine.closed) == (1, 1)


def test_without_the_local_extra_serve_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from support.cli import run_cli

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "faster_whisper" else real(name, *args),
    )
    for args in (["serve", "--port", "0"], ["recognize", "--local", "x.wav"]):
        result = run_cli(*args)
        assert result.exit_code == 2
        assert "pip install 'sttcli[local]'" in result.stderr
