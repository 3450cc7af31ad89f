"""Audio input: what an input holds, how it is read, and where its pauses are.

`sniff` names the format from its magic number; `sources` turns paths and
pipes into positioned byte streams a session can rewind (`AudioSource`, the
one interface the session layer uses); `decode` turns any other recording
into mono PCM at the rate sent, in a process of its own for a file
(`decoder_process`, `decoder_child`) and in a thread for a pipe
(`decoder_thread`), and `decoded` makes sources of it; `encode` turns PCM
into Ogg Opus for the wire; `ogg` follows Ogg pages,
`pauses` finds the silences sessions are cut in, `plan` says in one line what
happens to an input. Nothing heavy is imported here: PyAV is loaded only when
an input needs decoding or encoding.
"""
