"""Audio input: what an input holds, how it is read, and where its pauses are.

`sniff` names the format from the first bytes, `sources` turns paths and
pipes into positioned byte streams a session can rewind, `ogg` follows Ogg
pages, `pauses` finds the silences sessions are cut in. Nothing heavy is
imported here: a decoder is loaded only when an input needs one.
"""
