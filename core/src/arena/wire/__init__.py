"""Wire-level helpers shared by the protocol plugins' codecs; they import nothing else from arena."""
